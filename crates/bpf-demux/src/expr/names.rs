//! Built-in names: numbers, named constants, addresses, libpcap's
//! keywords, and the well-known ports and protocols that stand in for
//! `/etc/services` and `/etc/protocols` where a system has none (see
//! [`super::resolve`]).

/// Keywords of pcap-filter(7) this compiler does not handle yet.
pub const UNSUPPORTED: &[&str] = &[
    "type",
    "subtype",
    "dir",
    "rnr",
    "rulenum",
    "reason",
    "rset",
    "srnr",
    "subrulenum",
    "action",
    "radio",
    "hdlc",
    "atm",
    "vpi",
    "vci",
    "lane",
    "oamf4",
    "oamf4s",
    "oamf4e",
    "oam",
    "metac",
    "bcc",
    "sc",
    "ilmic",
    "connectmsg",
    "metaconnect",
    "ip6protochain",
];

/// libpcap's keywords (its scanner's reserved words).
const KEYWORDS: &[&str] = &[
    "dst",
    "src",
    "link",
    "ether",
    "ppp",
    "slip",
    "fddi",
    "tr",
    "wlan",
    "arp",
    "rarp",
    "ip",
    "sctp",
    "tcp",
    "udp",
    "icmp",
    "igmp",
    "igrp",
    "pim",
    "vrrp",
    "carp",
    "radio",
    "ip6",
    "icmp6",
    "ah",
    "esp",
    "atalk",
    "aarp",
    "decnet",
    "lat",
    "sca",
    "moprc",
    "mopdl",
    "iso",
    "esis",
    "es-is",
    "isis",
    "is-is",
    "l1",
    "l2",
    "iih",
    "lsp",
    "snp",
    "csnp",
    "psnp",
    "clnp",
    "stp",
    "ipx",
    "netbeui",
    "host",
    "net",
    "mask",
    "port",
    "portrange",
    "proto",
    "protochain",
    "gateway",
    "type",
    "subtype",
    "direction",
    "dir",
    "address1",
    "addr1",
    "address2",
    "addr2",
    "address3",
    "addr3",
    "address4",
    "addr4",
    "ra",
    "ta",
    "less",
    "greater",
    "byte",
    "broadcast",
    "multicast",
    "and",
    "or",
    "not",
    "len",
    "length",
    "inbound",
    "outbound",
    "ifindex",
    "vlan",
    "mpls",
    "pppoed",
    "pppoes",
    "geneve",
    "lane",
    "llc",
    "metac",
    "bcc",
    "oam",
    "oamf4",
    "oamf4ec",
    "oamf4sc",
    "sc",
    "ilmic",
    "vpi",
    "vci",
    "connectmsg",
    "metaconnect",
    "on",
    "ifname",
    "rset",
    "ruleset",
    "rnr",
    "rulenum",
    "srnr",
    "subrulenum",
    "reason",
    "action",
    "fisu",
    "lssu",
    "lsu",
    "msu",
    "hfisu",
    "hlssu",
    "hmsu",
    "sio",
    "opc",
    "dpc",
    "sls",
    "hsio",
    "hopc",
    "hdpc",
    "hsls",
];

/// Whether libpcap's scanner reads `w` as a name (its ID token): not a
/// keyword, not a number or address.
pub fn is_name(w: &str) -> bool {
    !KEYWORDS.contains(&w)
        && w.chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == '\\')
        && !w.contains(':')
}

/// A number as libpcap reads it: decimal, `0x` hex, leading-zero octal.
pub fn number(w: &str) -> Option<u32> {
    let v = if let Some(h) = w.strip_prefix("0x").or_else(|| w.strip_prefix("0X")) {
        u64::from_str_radix(h, 16).ok()?
    } else if w.len() > 1 && w.starts_with('0') {
        u64::from_str_radix(&w[1..], 8).ok()?
    } else {
        if w.is_empty() || !w.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        w.parse::<u64>().ok()?
    };
    u32::try_from(v).ok()
}

/// Named constants usable in arithmetic.
pub fn constant(w: &str) -> Option<u32> {
    Some(match w {
        "icmptype" | "icmp6type" => 0,
        "icmpcode" | "icmp6code" => 1,
        "tcpflags" => 13,
        "tcp-fin" => 0x01,
        "tcp-syn" => 0x02,
        "tcp-rst" => 0x04,
        "tcp-push" => 0x08,
        "tcp-ack" => 0x10,
        "tcp-urg" => 0x20,
        "tcp-ece" => 0x40,
        "tcp-cwr" => 0x80,
        "icmp-echoreply" => 0,
        "icmp-unreach" => 3,
        "icmp-sourcequench" => 4,
        "icmp-redirect" => 5,
        "icmp-echo" => 8,
        "icmp-routeradvert" => 9,
        "icmp-routersolicit" => 10,
        "icmp-timxceed" => 11,
        "icmp-paramprob" => 12,
        "icmp-tstamp" => 13,
        "icmp-tstampreply" => 14,
        "icmp-ireq" => 15,
        "icmp-ireqreply" => 16,
        "icmp-maskreq" => 17,
        "icmp-maskreply" => 18,
        "icmp6-destinationunreach" => 1,
        "icmp6-packettoobig" => 2,
        "icmp6-timeexceeded" => 3,
        "icmp6-parameterproblem" => 4,
        "icmp6-echo" => 128,
        "icmp6-echoreply" => 129,
        "icmp6-multicastlistenerquery" => 130,
        "icmp6-multicastlistenerreportv1" => 131,
        "icmp6-multicastlistenerdone" => 132,
        "icmp6-routersolicit" => 133,
        "icmp6-routeradvert" => 134,
        "icmp6-neighborsolicit" => 135,
        "icmp6-neighboradvert" => 136,
        "icmp6-redirect" => 137,
        "icmp6-routerrenum" => 138,
        "icmp6-nodeinformationquery" => 139,
        "icmp6-nodeinformationresponse" => 140,
        "icmp6-ineighbordiscoverysolicit" => 141,
        "icmp6-ineighbordiscoveryadvert" => 142,
        "icmp6-multicastlistenerreportv2" => 143,
        "icmp6-homeagentdiscoveryrequest" => 144,
        "icmp6-homeagentdiscoveryreply" => 145,
        "icmp6-mobileprefixsolicit" => 146,
        "icmp6-mobileprefixadvert" => 147,
        "icmp6-certpathsolicit" => 148,
        "icmp6-certpathadvert" => 149,
        "icmp6-multicastrouteradvert" => 151,
        "icmp6-multicastroutersolicit" => 152,
        "icmp6-multicastrouterterm" => 153,
        _ => return None,
    })
}

/// The transport a port name is registered for only, if only one (as in
/// Debian's /etc/services): `Some(6)` tcp, `Some(17)` udp.
pub fn port_proto(w: &str) -> Option<u8> {
    match w {
        "ftp-data" | "ftp" | "ssh" | "telnet" | "smtp" | "http" | "www" | "pop3"
        | "netbios-ssn" | "imap" | "imap2" | "bgp" | "mysql" => Some(6),
        "bootps" | "bootpc" | "tftp" | "ntp" | "netbios-ns" | "netbios-dgm" | "syslog"
        | "babel" => Some(17),
        _ => None,
    }
}

/// Well-known ports (a fixed table; no /etc/services).
pub fn port(w: &str) -> Option<u32> {
    Some(match w {
        "echo" => 7,
        "discard" => 9,
        "ftp-data" => 20,
        "ftp" => 21,
        "ssh" => 22,
        "telnet" => 23,
        "smtp" => 25,
        "domain" => 53,
        "bootps" => 67,
        "bootpc" => 68,
        "tftp" => 69,
        "http" | "www" => 80,
        "kerberos" => 88,
        "pop3" => 110,
        "sunrpc" => 111,
        "ntp" => 123,
        "netbios-ns" => 137,
        "netbios-dgm" => 138,
        "netbios-ssn" => 139,
        "imap" | "imap2" => 143,
        "snmp" => 161,
        "snmp-trap" => 162,
        "bgp" => 179,
        "ldap" => 389,
        "https" => 443,
        "syslog" => 514,
        "ldp" => 646,
        "openvpn" => 1194,
        "mysql" => 3306,
        "sip" => 5060,
        "babel" => 6696,
        _ => return None,
    })
}

/// IP protocol names.
pub fn ip_proto(w: &str) -> Option<u32> {
    Some(match w {
        "icmp" => 1,
        "igmp" => 2,
        "tcp" => 6,
        "igrp" => 9,
        "udp" => 17,
        "ipv6" => 41,
        "gre" => 47,
        "esp" => 50,
        "ah" => 51,
        "icmp6" => 58,
        "pim" => 103,
        "vrrp" | "carp" => 112,
        "sctp" => 132,
        _ => return None,
    })
}

/// EtherType names for `ether proto` (libpcap's eproto_db, then its LLC
/// SAP names).
pub fn ethertype(w: &str) -> Option<u32> {
    Some(match w {
        "aarp" => 0x80f3,
        "arp" => 0x0806,
        "atalk" => 0x809b,
        "decnet" => 0x6003,
        "ip" => 0x0800,
        "ip6" => 0x86dd,
        "lat" => 0x6004,
        "loopback" => 0x9000,
        "mopdl" => 0x6001,
        "moprc" => 0x6002,
        "rarp" => 0x8035,
        "sca" => 0x6007,
        "iso" => 0xfe,
        "stp" => 0x42,
        "ipx" => 0xe0,
        "netbeui" => 0xf0,
        _ => return None,
    })
}

/// A MAC address: six hex bytes separated by `:`, `-` or `.` (or
/// `xxxx.xxxx.xxxx`).
pub fn mac(w: &str) -> Option<[u8; 6]> {
    let parts: Vec<&str> = w.split([':', '-', '.']).collect();
    let bytes: Vec<u8> = match parts.len() {
        6 => parts
            .iter()
            .map(|p| {
                if p.len() <= 2 {
                    u8::from_str_radix(p, 16).ok()
                } else {
                    None
                }
            })
            .collect::<Option<_>>()?,
        3 => {
            let mut v = Vec::new();
            for p in parts {
                let n = if p.len() == 4 {
                    u16::from_str_radix(p, 16).ok()?
                } else {
                    return None;
                };
                v.extend_from_slice(&n.to_be_bytes());
            }
            v
        }
        _ => return None,
    };
    bytes.try_into().ok()
}

/// An IPv4 address, possibly partial (`10.1` = 10.1.0.0): the value and
/// the number of bits given (8 per part).
pub fn ipv4(w: &str) -> Option<(u32, u32)> {
    let parts: Vec<&str> = w.split('.').collect();
    if parts.is_empty() || parts.len() > 4 {
        return None;
    }
    let mut v = 0u32;
    for p in &parts {
        if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let n: u32 = p.parse().ok()?;
        if n > 255 {
            return None;
        }
        v = (v << 8) | n;
    }
    let bits = 8 * parts.len() as u32;
    Some((v << (32 - bits), bits))
}
