//! The interfaces takedown attaches to: that one exists in this network namespace, and that
//! its packets begin with an Ethernet header, which the program parses. A layer-3 link (tun,
//! WireGuard, ipip, GRE, PPP) hands XDP and tc the IP header first: every packet would read
//! as not IP and pass, so such an interface is refused rather than "attached".

use std::ffi::CString;

use anyhow::{Result, anyhow, bail};

/// Link types whose frames start with an Ethernet header (`ARPHRD_ETHER`, and loopback's).
const ETHERNET_LIKE: [u16; 2] = [libc::ARPHRD_ETHER, libc::ARPHRD_LOOPBACK];

/// The index of `iface` in this network namespace (0: no such interface).
pub fn index(iface: &str) -> Result<u32> {
    let name = CString::new(iface).map_err(|_| anyhow!("invalid interface name {iface:?}"))?;
    // SAFETY: `name` is a valid NUL-terminated string.
    Ok(unsafe { libc::if_nametoindex(name.as_ptr()) })
}

/// Fails with one sentence when `iface` does not exist in this network namespace, or carries
/// no Ethernet header.
pub fn check(iface: &str) -> Result<()> {
    if index(iface)? == 0 {
        bail!("interface {iface} does not exist");
    }
    let kind = link_type(iface)?;
    if !ETHERNET_LIKE.contains(&kind) {
        bail!(
            "interface {iface} carries no Ethernet header (link type {kind}: a layer-3 link such as \
             tun, WireGuard, ipip, GRE or PPP), where takedown would pass every packet: attach it \
             to the Ethernet interface that carries this traffic"
        );
    }
    Ok(())
}

/// The `ARPHRD_*` link type of `iface` (SIOCGIFHWADDR).
fn link_type(iface: &str) -> Result<u16> {
    // SAFETY: a plain socket call; the descriptor is closed below.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        bail!(
            "cannot open a socket to ask {iface}'s link type: {}",
            std::io::Error::last_os_error()
        );
    }
    // SAFETY: ifreq is plain data; all zeroes is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(iface.bytes().take(libc::IFNAMSIZ - 1)) {
        *dst = src as libc::c_char;
    }
    // SAFETY: `req` is a valid ifreq that outlives the call; `fd` is ours.
    let rc = unsafe { libc::ioctl(fd, libc::SIOCGIFHWADDR, &mut req) };
    let err = std::io::Error::last_os_error();
    // SAFETY: closing the descriptor opened above.
    unsafe { libc::close(fd) };
    if rc != 0 {
        bail!("cannot ask {iface}'s link type: {err}");
    }
    // SAFETY: SIOCGIFHWADDR filled the hardware-address member of the union.
    Ok(unsafe { req.ifr_ifru.ifru_hwaddr.sa_family })
}
