//! What the README's "Errors and exit codes" table quotes: each fragment below is asserted on
//! real output by a test, and `the_readme_error_table_quotes_what_the_code_prints` (cli.rs)
//! checks that the table holds it word for word. Change a message, and both must follow.

pub const NEEDS_ROOT: &str = "needs root (CAP_BPF and CAP_NET_ADMIN); run it as root or with sudo";
pub const NEEDS_ROOT_TO_READ: &str =
    "needs root (CAP_BPF) to read the filter; run it as root or with sudo";
pub const HOSTS_NEEDS_ROOT: &str = "takedown hosts needs root: ";
pub const REFRESH_NEEDS_ROOT: &str = "needs root: ";
pub const NEEDS_PERFMON: &str =
    "needs CAP_PERFMON as well to load its program (the systemd unit grants it)";
pub const NO_INTERFACE: &str = " does not exist";
pub const NO_ETHERNET: &str = " carries no Ethernet header (link type ";
pub const UNREADABLE_LIST: &str = "cannot read list file ";
pub const UNRECOGNISABLE: &str = ": no known format fits (tried stix, misp, crowdsec-json, spamhaus-json, misp-csv, csv with a header, hosts, plain/trail lines; read as ";
pub const NO_LIST_LOADS: &str = "no list could be loaded: list ";
pub const TOO_MANY: &str = " map can hold (";
pub const RAISE_MAX: &str = "); raise --max-entries";
pub const ATTACH_FAILED: &str = "cannot attach in native mode to ";
pub const OTHER_XDP: &str = ": another XDP program is attached there; remove it (`ip link set dev ";
pub const OTHER_XDP_FIX: &str = " xdp off`) or `takedown detach` the filter that holds it";
pub const SECOND_DAEMON: &str = "a takedown daemon is already running (pid ";
pub const SAME_PINS: &str = "another takedown daemon uses the pin directory ";
pub const SAME_PINS_FIX: &str = ": stop it first, or give this one its own --pin-dir";
pub const CONFIRM: &str = ": confirm with --yes";
pub const NO_DAEMON: &str = "no takedown daemon is running (start one with `takedown run`)";
pub const SAVED_NOT_APPLIED: &str = "the manual list is saved, but the pinned filter could not take the change now (the next `takedown run` applies it): ";
pub const MAP_FULL: &str = " map is full (";
pub const UNTRUSTED_CA: &str = "UnknownIssuer (the server's certificate is signed by an authority this machine does not trust: give its CA to takedown with SSL_CERT_FILE=/path/ca.pem or SSL_CERT_DIR in its environment)";
pub const NO_API_ROOT: &str = "(HTTP 404): check the list's taxii url";

/// Every fragment, for the README check.
pub const ALL: [&str; 24] = [
    NEEDS_ROOT,
    REFRESH_NEEDS_ROOT,
    NEEDS_PERFMON,
    NO_ETHERNET,
    NEEDS_ROOT_TO_READ,
    HOSTS_NEEDS_ROOT,
    NO_INTERFACE,
    UNREADABLE_LIST,
    UNRECOGNISABLE,
    NO_LIST_LOADS,
    TOO_MANY,
    RAISE_MAX,
    ATTACH_FAILED,
    OTHER_XDP,
    OTHER_XDP_FIX,
    SECOND_DAEMON,
    SAME_PINS,
    SAME_PINS_FIX,
    CONFIRM,
    NO_DAEMON,
    SAVED_NOT_APPLIED,
    MAP_FULL,
    UNTRUSTED_CA,
    NO_API_ROOT,
];
