#!/bin/sh
# The end-to-end check `cargo xtask test --kernels` runs as /init of a QEMU guest booted on a
# stock distribution kernel: takedown loads, attaches natively and in skb mode to a veth,
# drops listed IPv4 and IPv6 traffic and passes the rest, pins its maps (they outlive the
# daemon) and counts its drops. The guest has no network card: all traffic stays between the
# namespaces made here. Prints one "TAKEDOWN-CHECK ..." line a step and a final PASS or FAIL.
# The list holds a prefix and an exact address, so both kinds of lookup run.
export PATH=/bin
fail() { echo "TAKEDOWN-CHECK FAIL: $*"; poweroff -f; }
step() { echo "TAKEDOWN-CHECK ok: $*"; }
# iproute2 (busybox's own ip has no netns): installed as /bin/rt-ip, as busybox's shell would
# run its applet for the name ip.
ip() { /bin/rt-ip "$@"; }

mount -t proc proc /proc && mount -t sysfs sys /sys && mount -t devtmpfs dev /dev || fail "mounts"
# A bpffs outside /sys: `ip netns exec` mounts a fresh /sys for each command.
mkdir -p /bpf && mount -t bpf bpf /bpf || fail "bpffs"
mount -t tmpfs tmpfs /run && mkdir -p /run/netns /tmp /var && ln -s /run /var/run
echo "TAKEDOWN-CHECK kernel $(uname -r) $(uname -v)"
[ -e /sys/kernel/btf/vmlinux ] || fail "no BTF"
insmod /veth.ko || fail "insmod veth"
ip link set lo up

# client (192.0.2.10) -- td-c/td-g -- gateway -- td-o/td-i -- internet (listed and clean hosts)
for ns in c g i; do ip netns add $ns || fail "netns $ns"; ip -n $ns link set lo up; done
ip -n c link add td-c type veth peer name td-g netns g || fail "veth c-g"
ip -n i link add td-i type veth peer name td-o netns g || fail "veth i-g"
ip -n c addr add 192.0.2.10/24 dev td-c
ip -n c -6 addr add 2001:db8:1::10/64 dev td-c nodad
ip -n g addr add 192.0.2.1/24 dev td-g
ip -n g -6 addr add 2001:db8:1::1/64 dev td-g nodad
ip -n g addr add 198.51.100.1/24 dev td-o
ip -n g -6 addr add 2001:db8:2::1/64 dev td-o nodad
ip -n i addr add 198.51.100.2/24 dev td-i
ip -n i -6 addr add 2001:db8:2::2/64 dev td-i nodad
for a in 203.0.113.7/32 198.51.100.7/32; do ip -n i addr add $a dev lo; done
for a in 2001:db8:bad::7/128 2001:db8:900d::7/128; do ip -n i -6 addr add $a dev lo nodad; done
ip -n c link set td-c up; ip -n g link set td-g up; ip -n g link set td-o up; ip -n i link set td-i up
ip -n c route add default via 192.0.2.1
ip -n c -6 route add default via 2001:db8:1::1
ip -n i route add default via 198.51.100.1
ip -n i -6 route add default via 2001:db8:2::1
ip netns exec g sh -c 'echo 1 > /proc/sys/net/ipv4/ip_forward; echo 1 > /proc/sys/net/ipv6/conf/all/forwarding'
ip -n g route add 203.0.113.0/24 via 198.51.100.2
ip -n g -6 route add 2001:db8:bad::/48 via 2001:db8:2::2
ip -n g -6 route add 2001:db8:900d::/48 via 2001:db8:2::2
# Every address answers before takedown runs (so a drop later is takedown's), and neighbours
# are resolved before any count is taken.
for a in 203.0.113.7 198.51.100.7 2001:db8:bad::7 2001:db8:900d::7; do
    ip netns exec c ping -c 1 -W 5 $a >/dev/null || fail "$a unreachable before takedown"
done
step "namespaces and veths"

# A prefix (IPv4) and an exact address (IPv6): both lookups are exercised.
printf '203.0.113.0/24\n2001:db8:bad::7\n' > /list.txt
# Replies to 3 pings (busybox: "3 packets transmitted, 0 packets received, ...").
replies() {
    ip netns exec c ping $1 -c 3 -i 0.2 -W 1 $2 2>/dev/null \
        | sed -n 's/.*, \([0-9]*\) packets received.*/\1/p'
}
for mode in native skb; do
    pins=/bpf/td-$mode
    ip netns exec g takedown run -i td-g -l /list.txt --mode $mode --pin-dir $pins \
        --state-dir /tmp/state-$mode >/tmp/run-$mode.log 2>&1 &
    daemon=$!
    n=0
    until grep -q '^filtering' /tmp/run-$mode.log; do
        n=$((n + 1)); [ $n -gt 300 ] && { cat /tmp/run-$mode.log; fail "$mode: not filtering in 60 s"; }
        kill -0 $daemon 2>/dev/null || { cat /tmp/run-$mode.log; fail "$mode: takedown exited"; }
        sleep 0.2
    done
    grep -q "attached to td-g in $mode" /tmp/run-$mode.log \
        || { cat /tmp/run-$mode.log; fail "$mode: not attached in $mode mode"; }
    step "$mode: loaded and attached"
    expect() {
        got=$(replies $1 $2)
        [ "$got" = "$3" ] || fail "$mode: $2: $got of 3 pings answered, $3 expected"
    }
    expect -4 203.0.113.7 0
    expect -6 2001:db8:bad::7 0
    expect -4 198.51.100.7 3
    expect -6 2001:db8:900d::7 3
    step "$mode: listed v4/v6 dropped, clean v4/v6 passed"
    timeout 30 /bin/rt-ip netns exec g takedown stats --pin-dir $pins --state-dir /tmp/state-$mode > /tmp/stats 2>&1
    # 3 IPv4 and 3 IPv6 echo requests were dropped.
    dropped=$(sed -n 's/^dropped *\([0-9]*\) pkts.*/\1/p' /tmp/stats)
    [ "${dropped:-0}" -ge 6 ] || { cat /tmp/stats; fail "$mode: stats say $dropped dropped"; }
    kill -TERM $daemon; wait $daemon
    [ -n "$(ls $pins)" ] || fail "$mode: nothing pinned"
    expect -4 203.0.113.7 0
    step "$mode: stats count $dropped drops; the pinned filter enforces after the daemon exits"
    timeout 30 /bin/rt-ip netns exec g takedown detach --yes --pin-dir $pins --state-dir /tmp/state-$mode \
        >/tmp/detach 2>&1 || { cat /tmp/detach; fail "$mode: detach"; }
    expect -4 203.0.113.7 3
    step "$mode: detached"
done
echo "TAKEDOWN-CHECK PASS"
poweroff -f
