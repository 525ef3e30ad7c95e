//! The harness's own RESP parser, on bytes of every RESP2/RESP3 type (no
//! server): the other suites rely on it to tell replies apart.

mod common;

use common::*;

#[test]
fn parses_every_resp2_and_resp3_type() {
    let wire = b"+OK\r\n-ERR bad\r\n:-42\r\n$5\r\nhe\r\nl\r\n$0\r\n\r\n$-1\r\n*-1\r\n_\r\n\
*2\r\n$1\r\na\r\n*1\r\n:1\r\n%1\r\n+k\r\n,1.5\r\n~2\r\n#t\r\n#f\r\n,inf\r\n,-inf\r\n\
=8\r\ntxt:a\r\nb\r\n>3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$1\r\nm\r\n(12345678901234567890\r\n\
|1\r\n+ttl\r\n:3\r\n$1\r\nv\r\n!8\r\nSYNTAX x\r\n";
    let v = parse_all(wire).unwrap();
    let expected = vec![
        Value::Simple("OK".into()),
        Value::Error("ERR bad".into()),
        Value::Int(-42),
        Value::Bulk(b"he\r\nl".to_vec()),
        b(""),
        Value::NilBulk,
        Value::NilArray,
        Value::Null,
        arr(vec![b("a"), arr(vec![Value::Int(1)])]),
        Value::Map(vec![(Value::Simple("k".into()), Value::Double(1.5))]),
        Value::Set(vec![Value::Boolean(true), Value::Boolean(false)]),
        Value::Double(f64::INFINITY),
        Value::Double(f64::NEG_INFINITY),
        Value::Verbatim("txt".into(), b"a\r\nb".to_vec()),
        Value::Push(vec![b("message"), b("ch"), b("m")]),
        Value::BigNumber("12345678901234567890".into()),
        // An attribute is skipped: the value it annotates is what counts.
        b("v"),
        Value::Error("SYNTAX x".into()),
    ];
    assert_eq!(v, expected);
    // Map helpers read RESP3 maps and RESP2 flat pairs alike.
    let m = Value::Map(vec![(b("proto"), Value::Int(3))]);
    assert_eq!(m.get("proto"), Some(Value::Int(3)));
    assert_eq!(arr(vec![b("proto"), Value::Int(2)]).get("proto"), Some(Value::Int(2)));
}

#[test]
fn tells_truncated_from_malformed() {
    assert!(matches!(parse_all(b"$5\r\nab"), Err(ReadError::Truncated)));
    assert!(matches!(parse_all(b"*2\r\n:1\r\n"), Err(ReadError::Truncated)));
    assert!(matches!(parse_all(b":1\r\n+O"), Err(ReadError::Truncated)));
    assert!(matches!(parse_all(b"?what\r\n"), Err(ReadError::Malformed(_))));
    assert!(matches!(parse_all(b"$2\r\nabc\r\n"), Err(ReadError::Malformed(_))));
    assert!(matches!(parse_all(b":x\r\n"), Err(ReadError::Malformed(_))));
    assert!(matches!(parse_all(b"+OK\n"), Err(ReadError::Malformed(_))));
    assert_eq!(parse_all(b"").unwrap(), vec![]);
}
