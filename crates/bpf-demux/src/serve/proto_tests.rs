//! The protocol's bytes, written out by hand from the module's description
//! (not from the encoder), and every way a frame can be refused.

use super::*;

fn hello_bytes() -> Vec<u8> {
    vec![0, 0, 0, 7, 0x01, b'B', b'P', b'F', b'D', 0, 1]
}

/// `Attach` of "web", snaplen 96, queue 65536 bytes, one `ret #-1`.
fn attach_bytes() -> Vec<u8> {
    let mut b = vec![0x02, 3, b'w', b'e', b'b'];
    b.extend_from_slice(&[0, 0, 0, 96]);
    b.extend_from_slice(&[0, 0, 0, 0, 0, 1, 0, 0]);
    b.extend_from_slice(&[0, 1]);
    b.extend_from_slice(&[0x00, 0x06, 0, 0, 0xff, 0xff, 0xff, 0xff]);
    let mut f = (b.len() as u32).to_be_bytes().to_vec();
    f.extend_from_slice(&b);
    f
}

#[test]
fn client_messages_have_the_documented_bytes() {
    let mut out = Vec::new();
    ClientMessage::Hello { version: 1 }.encode(&mut out);
    assert_eq!(out, hello_bytes());
    let attach = ClientMessage::Attach(AttachRequest {
        name: "web".into(),
        snaplen: Some(96),
        queue_bytes: Some(65536),
        insns: vec![Insn::new(0x06, 0, 0, u32::MAX)],
    });
    out.clear();
    attach.encode(&mut out);
    assert_eq!(out, attach_bytes());
    assert_eq!(
        decode_client(&attach_bytes()),
        Ok(Some((attach, attach_bytes().len())))
    );
    out.clear();
    ClientMessage::Detach.encode(&mut out);
    ClientMessage::List.encode(&mut out);
    assert_eq!(out, [0, 0, 0, 1, 0x03, 0, 0, 0, 1, 0x04]);
}

#[test]
fn partial_frames_ask_for_more_and_back_to_back_frames_split() {
    let mut two = hello_bytes();
    two.extend_from_slice(&[0, 0, 0, 1, 0x03]);
    for cut in 0..hello_bytes().len() {
        assert_eq!(decode_client(&two[..cut]), Ok(None), "cut at {cut}");
    }
    let (m, used) = decode_client(&two).unwrap().unwrap();
    assert_eq!((m, used), (ClientMessage::Hello { version: 1 }, 11));
    assert_eq!(
        decode_client(&two[used..]),
        Ok(Some((ClientMessage::Detach, 5)))
    );
}

#[test]
fn an_oversize_length_is_refused_from_the_prefix_alone() {
    let len = (MAX_CLIENT_FRAME + 1) as u32;
    assert_eq!(
        decode_client(&len.to_be_bytes()),
        Err(ProtoError::TooLong {
            len: MAX_CLIENT_FRAME + 1,
            max: MAX_CLIENT_FRAME
        })
    );
    assert_eq!(decode_client(&[0, 0, 0, 0]), Err(ProtoError::Empty));
    assert_eq!(
        decode_client(&[0xff, 0xff, 0xff, 0xff]),
        Err(ProtoError::TooLong {
            len: u32::MAX as usize,
            max: MAX_CLIENT_FRAME
        })
    );
}

#[test]
fn malformed_bodies_are_refused_with_what_is_wrong() {
    let frame = |body: &[u8]| {
        let mut f = (body.len() as u32).to_be_bytes().to_vec();
        f.extend_from_slice(body);
        f
    };
    assert_eq!(
        decode_client(&frame(&[0x7f])),
        Err(ProtoError::UnknownKind(0x7f))
    );
    // Daemon kinds are not client messages.
    assert_eq!(
        decode_client(&frame(&[0x81])),
        Err(ProtoError::UnknownKind(0x81))
    );
    assert_eq!(
        decode_client(&frame(&[0x01, b'B', b'P', b'F', b'X', 0, 1])),
        Err(ProtoError::BadMagic { what: "hello" })
    );
    assert_eq!(
        decode_client(&frame(&[0x01, b'B', b'P', b'F', b'D', 0])),
        Err(ProtoError::Truncated {
            what: "hello",
            len: 5
        })
    );
    assert_eq!(
        decode_client(&frame(&[0x03, 0])),
        Err(ProtoError::Trailing {
            what: "detach",
            extra: 1
        })
    );
    let mut a = attach_bytes();
    a.push(0);
    a[3] += 1;
    assert_eq!(
        decode_client(&a),
        Err(ProtoError::Trailing {
            what: "attach",
            extra: 1
        })
    );
    // One instruction announced, none there.
    let mut b = attach_bytes();
    b.truncate(b.len() - 8);
    b[3] -= 8;
    assert!(matches!(
        decode_client(&b),
        Err(ProtoError::Truncated { what: "attach", .. })
    ));
    // Names: a slash, empty, not UTF-8.
    let mut c = attach_bytes();
    c[7] = b'/';
    assert_eq!(decode_client(&c), Err(ProtoError::BadName("w/b".into())));
    let mut d = vec![0x02, 0];
    d.extend_from_slice(&[0; 12]);
    d.extend_from_slice(&[0, 1, 0, 6, 0, 0, 0, 0, 0, 0]);
    assert_eq!(
        decode_client(&frame(&d)),
        Err(ProtoError::BadName(String::new()))
    );
    let mut e = attach_bytes();
    e[6] = 0xff;
    assert_eq!(
        decode_client(&e),
        Err(ProtoError::NotUtf8 { what: "attach" })
    );
    // Counts 0 and 4097 (before any instruction is read).
    let mut z = vec![0x02, 1, b'a'];
    z.extend_from_slice(&[0; 12]);
    z.extend_from_slice(&[0, 0]);
    assert_eq!(decode_client(&frame(&z)), Err(ProtoError::InsnCount(0)));
    let n = z.len();
    z[n - 2..].copy_from_slice(&4097u16.to_be_bytes());
    assert_eq!(decode_client(&frame(&z)), Err(ProtoError::InsnCount(4097)));
}

#[test]
fn daemon_messages_round_trip_and_frames_have_the_documented_header() {
    let msgs = vec![
        DaemonMessage::Welcome {
            version: 1,
            linktype: 1,
            max_snaplen: 262144,
            interface: "veth0".into(),
        },
        DaemonMessage::Attached {
            name: "web".into(),
            snaplen: 96,
            queue_bytes: 1 << 20,
        },
        DaemonMessage::Refused {
            code: RefuseCode::NameTaken,
            message: "tenant `web` exists".into(),
        },
        DaemonMessage::Frame {
            ts_sec: 1_700_000_000,
            ts_nsec: 123_456_789,
            orig_len: 60,
            data: vec![0xaa; 14],
        },
        DaemonMessage::Stats {
            frames: 3,
            bytes: 180,
            drops: 1,
        },
        DaemonMessage::Tenants(TenantsReport {
            interface: "veth0".into(),
            ring_frames: 10,
            hidden: 2,
            ..TenantsReport::default()
        }),
    ];
    let mut out = Vec::new();
    for m in &msgs {
        m.encode(&mut out);
    }
    let mut at = 0;
    for m in &msgs {
        let (got, used) = decode_daemon(&out[at..]).unwrap().unwrap();
        assert_eq!(&got, m);
        at += used;
    }
    assert_eq!(at, out.len());
    let h = frame_header(1, 2, 60, 14);
    assert_eq!(
        h,
        [0, 0, 0, 31, 0x84, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 60]
    );
    assert_eq!(
        decode_daemon(&[0, 0, 0, 2, 0x83, 99]),
        Err(ProtoError::UnknownCode(99))
    );
}
