//! What can be wrong with an expression, as kinds (the column is in
//! [`ExprError`]). The messages follow libpcap's where libpcap has one.

use crate::cbpf::program::MAX_INSNS;
use std::fmt;

/// An expression the compiler refuses: where (1-based column) and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExprError {
    /// 1-based column of the token concerned.
    pub col: usize,
    /// The rule broken.
    pub kind: ExprErrorKind,
}

impl ExprError {
    /// `kind` at column `col`.
    pub fn new(col: usize, kind: ExprErrorKind) -> ExprError {
        ExprError { col, kind }
    }
}

impl fmt::Display for ExprError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "column {}: {}", self.col, self.kind)
    }
}

impl std::error::Error for ExprError {}

/// What a token was expected to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expected {
    /// A number.
    Number,
    /// A dotted netmask after `mask`.
    Netmask,
    /// An EtherType after `ether proto`.
    EtherType,
    /// A protocol after `proto`.
    Protocol,
}

impl fmt::Display for Expected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Expected::Number => "a number",
            Expected::Netmask => "a netmask",
            Expected::EtherType => "an EtherType number or name",
            Expected::Protocol => "a protocol number or name",
        })
    }
}

/// A link-layer keyword a link type has no field for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkOnly {
    /// `ether host`, `ether src`, `ether dst`.
    EtherAddress,
    /// `ether broadcast`.
    Broadcast,
    /// `ether multicast`.
    Multicast,
    /// `vlan`.
    Vlan,
    /// `mpls`.
    Mpls,
    /// `llc`.
    Llc,
}

/// libpcap's message for `what` on the link type it describes as `link`.
fn not_on_link(what: LinkOnly, link: &str) -> String {
    match what {
        LinkOnly::EtherAddress => "ethernet addresses supported only on ethernet/FDDI/token ring/802.11/ATM LANE/Fibre Channel".into(),
        LinkOnly::Broadcast => "not a broadcast link".into(),
        LinkOnly::Multicast => "link-layer multicast filters supported only on ethernet/FDDI/token ring/ARCNET/802.11/ATM LANE/Fibre Channel".into(),
        LinkOnly::Vlan => format!("no VLAN support for {link}"),
        LinkOnly::Mpls => format!("no MPLS support for {link}"),
        LinkOnly::Llc => format!("'llc' not supported for {link}"),
    }
}

/// libpcap's refusal of `P proto N` for a protocol `P` that names no
/// protocol inside it.
fn proto_refused(p: &str) -> String {
    match p {
        "arp" | "rarp" => format!("{p} does not encapsulate another protocol"),
        "lat" | "sca" | "moprc" | "mopdl" => format!(
            "{} does not encapsulate another protocol",
            p.to_ascii_uppercase()
        ),
        "atalk" => "AppleTalk encapsulation is not specifiable".into(),
        "decnet" => "DECNET encapsulation is not specifiable".into(),
        "clnp" => "'clnp proto' is not supported".into(),
        _ => format!("'{p} proto' is bogus"),
    }
}

/// Why an expression is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ExprErrorKind {
    /// The expression is empty.
    #[error("empty expression (bpf-demux needs a filter; use `len > 0` to accept all)")]
    Empty,
    /// A character no token starts with.
    #[error("syntax error: unexpected character `{0}`")]
    UnexpectedChar(char),
    /// A token where the grammar allows none of its kind.
    #[error("syntax error near `{0}`")]
    SyntaxNear(String),
    /// A protocol keyword where a name is needed: libpcap wants it escaped.
    #[error("syntax error near `{0}` (write `\\{0}`)")]
    Unescaped(String),
    /// The expression ends too early.
    #[error("syntax error: unexpected end of expression")]
    UnexpectedEnd,
    /// Something else than what the grammar needs here.
    #[error("expected {0}")]
    Expected(Expected),
    /// `portrange` without `LOW-HIGH`.
    #[error("expected a port range `LOW-HIGH`, found `{0}`")]
    PortRange(String),
    /// A keyword libpcap has and this compiler does not yet.
    #[error("`{0}` is not supported yet by bpf-demux's compiler")]
    Unsupported(String),
    /// A packet accessor this compiler does not yet support (`proto[...]`).
    #[error("`{0}[...]` is not supported yet")]
    UnsupportedAccessor(&'static str),
    /// `ip broadcast` without a netmask to know the broadcast address by.
    #[error("`ip broadcast` needs the network's netmask, which a filter set does not know")]
    IpBroadcast,
    /// `P broadcast` for a `P` other than the link layer and IPv4.
    #[error("only link-layer/IP broadcast filters supported")]
    BroadcastQualifier,
    /// `P multicast` for a `P` other than the link layer, IPv4 and IPv6.
    #[error("link-layer multicast filters supported only on ethernet/FDDI/token ring/ARCNET/802.11/ATM LANE/Fibre Channel")]
    MulticastQualifier,
    /// `P proto N` where `P` carries no protocol field.
    #[error("{}", proto_refused(.0))]
    ProtoQualifier(&'static str),
    /// `P protochain N` for a `P` other than `ip` and `ip6`.
    #[error("bad protocol applied for 'protochain'")]
    ProtochainQualifier,
    /// `llc NAME` with a name that is no LLC frame type.
    #[error("unknown LLC type name \"{0}\"")]
    UnknownLlcType(String),
    /// `iso proto NAME` with a name that is no OSI protocol.
    #[error("unknown osi proto '{0}'")]
    UnknownOsiProto(String),
    /// A DECnet host given by name (libpcap has no DECnet name service).
    #[error("decnet name support not included, '{0}' cannot be translated")]
    DecnetName(String),
    /// Not a DECnet address (`AREA.NODE`).
    #[error("malformed decnet address '{0}'")]
    BadDecnet(String),
    /// `P host` for a protocol family libpcap has no host test for.
    #[error("{0} host filtering not implemented")]
    HostNotImplemented(&'static str),
    /// `inbound` or `outbound` in a capture file without a direction in
    /// its link header.
    #[error("inbound/outbound not supported on {0} when reading savefiles")]
    DirectionOnSavefile(&'static str),
    /// `ifindex` in a capture file without an interface index in its link
    /// header.
    #[error("ifindex not supported on {0} when reading savefiles")]
    IfindexOnSavefile(&'static str),
    /// `ifname` (or `on`): OpenBSD's pflog only.
    #[error("ifname supported only on PF linktype")]
    IfnamePf,
    /// A bare `ether`.
    #[error("`ether` needs a qualifier (host, src, dst, proto, broadcast, multicast)")]
    EtherQualifier,
    /// `ip port` / `ip6 port`.
    #[error("illegal qualifier of 'port'")]
    PortQualifier,
    /// A protocol qualifier on what it cannot qualify (`'udp' modifier
    /// applied to host`).
    #[error("'{qualifier}' modifier applied to {target}")]
    Modifier {
        /// The qualifier (`udp`, `ip6`, ...).
        qualifier: &'static str,
        /// What it was applied to (`host`, `port`, `net`, `an IPv6 address`).
        target: &'static str,
    },
    /// A port name of one protocol under another (`udp port ssh`... when
    /// the name is TCP's only).
    #[error("port '{port}' is {proto}")]
    PortOfOtherProto {
        /// The name.
        port: String,
        /// The one protocol it names a port of.
        proto: &'static str,
    },
    /// `[off:size]` with another size.
    #[error("data size must be 1, 2 or 4, not {0}")]
    DataSize(u32),
    /// An EtherType above 0xffff.
    #[error("EtherType {0} out of range")]
    EtherTypeRange(u32),
    /// A protocol number above 255.
    #[error("protocol {0} out of range (0 to 255)")]
    ProtocolRange(u32),
    /// A port above 65535.
    #[error("port {0} out of range (0 to 65535)")]
    PortValueRange(u32),
    /// An IPv4 prefix length above 32.
    #[error("mask length {0} > 32")]
    MaskLength4(u32),
    /// An IPv6 prefix length above 128.
    #[error("mask length {0} > 128")]
    MaskLength6(u32),
    /// A VLAN id above 4095.
    #[error("VLAN tag {0} greater than maximum 4095")]
    VlanRange(u32),
    /// An MPLS label above 2^20 - 1.
    #[error("MPLS label {0} greater than maximum 1048575")]
    MplsRange(u32),
    /// A Geneve VNI above 2^24 - 1.
    #[error("Geneve VNI {0} greater than maximum 16777215")]
    GeneveRange(u32),
    /// A PPPoE session above 65535.
    #[error("PPPoE session number {0} greater than maximum 65535")]
    PppoeRange(u32),
    /// A constant shift by more than 31.
    #[error("shift by {0} is more than 31 bits")]
    ShiftRange(u32),
    /// A constant division or modulo by zero.
    #[error("division by zero")]
    DivisionByZero,
    /// A protocol name neither known nor in `/etc/protocols`.
    #[error("unknown ip proto '{0}'")]
    UnknownProtocol(String),
    /// A port name neither known nor in `/etc/services`.
    #[error("unknown port '{0}'")]
    UnknownPort(String),
    /// A host name neither in the hosts file nor known to the resolver.
    #[error("unknown host '{0}'")]
    UnknownHost(String),
    /// A host name with no address of the family the qualifier asks for.
    #[error("unknown host '{0}' for specified address family")]
    UnknownHostOfFamily(String),
    /// An Ethernet host name not in the ethers file.
    #[error("unknown ether host '{0}'")]
    UnknownEtherHost(String),
    /// A network name not in the networks file.
    #[error("unknown network '{0}'")]
    UnknownNetwork(String),
    /// `gateway` without a host name.
    #[error("'gateway' requires a name")]
    GatewayName,
    /// Not an Ethernet address.
    #[error("bad ethernet address '{0}'")]
    BadEthernet(String),
    /// Not an IPv4 address.
    #[error("bad IPv4 address '{0}'")]
    BadIpv4(String),
    /// Not an IPv6 address.
    #[error("bad IPv6 address '{0}'")]
    BadIpv6(String),
    /// A network whose address has bits outside its mask.
    #[error("non-network bits set in \"{0}\"")]
    NonNetworkBits(String),
    /// `host` with a partial address (`host 10.1`).
    #[error("'{0}' is not a complete host address")]
    IncompleteHost(String),
    /// A protocol test over MPLS other than IPv4 or IPv6.
    #[error("unsupported protocol over mpls")]
    ProtocolOverMpls,
    /// `vlan` after `mpls`.
    #[error("no VLAN match after MPLS")]
    VlanAfterMpls,
    /// `protochain` after a header of variable length.
    #[error("'protochain' not supported with variable length headers")]
    ProtochainVariable,
    /// More than the 16 scratch cells of cBPF.
    #[error("expression too complex (needs more than 16 scratch cells)")]
    TooComplex,
    /// A link-layer keyword the link type compiled for has no field for.
    #[error("{}", not_on_link(*.what, .link))]
    NotOnLink {
        /// The keyword.
        what: LinkOnly,
        /// libpcap's description of the link type.
        link: &'static str,
    },
    /// No frame can match (libpcap refuses such an expression too).
    #[error("expression rejects all packets")]
    RejectsAll,
    /// The program would pass the kernel's instruction limit.
    #[error("the program would have {insns} instructions; the kernel's limit is {MAX_INSNS}")]
    TooLong {
        /// How many it would have.
        insns: usize,
    },
}
