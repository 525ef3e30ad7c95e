//! Pub/Sub over real sockets: subscription counts, message delivery in
//! RESP2 and RESP3, the RESP2 subscribed context, PUBSUB introspection.

mod common;

use std::collections::BTreeSet;

use common::*;

fn confirm(kind: &str, name: Option<&str>, count: i64) -> Value {
    arr(vec![b(kind), name.map_or(Value::NilBulk, b), Value::Int(count)])
}

fn push(kind: &str, name: Option<&str>, count: i64) -> Value {
    Value::Push(vec![b(kind), name.map_or(Value::Null, b), Value::Int(count)])
}

#[test]
fn subscribe_unsubscribe_counts() {
    let s = Server::start(&[]);
    let mut c = s.client();
    c.send(&["SUBSCRIBE", "a", "b"]);
    assert_eq!(c.read_value(), confirm("subscribe", Some("a"), 1));
    assert_eq!(c.read_value(), confirm("subscribe", Some("b"), 2));
    // Subscribing again to a channel keeps the count.
    assert_eq!(c.cmd(&["SUBSCRIBE", "a"]), confirm("subscribe", Some("a"), 2));
    // Patterns count in the same total.
    c.send(&["PSUBSCRIBE", "p.*", "q.*"]);
    assert_eq!(c.read_value(), confirm("psubscribe", Some("p.*"), 3));
    assert_eq!(c.read_value(), confirm("psubscribe", Some("q.*"), 4));
    assert_eq!(c.cmd(&["UNSUBSCRIBE", "a"]), confirm("unsubscribe", Some("a"), 3));
    // Unsubscribing from a channel never subscribed still answers.
    assert_eq!(c.cmd(&["UNSUBSCRIBE", "never"]), confirm("unsubscribe", Some("never"), 3));
    // No argument: every channel (only b is left).
    assert_eq!(c.cmd(&["UNSUBSCRIBE"]), confirm("unsubscribe", Some("b"), 2));
    c.send(&["PUNSUBSCRIBE"]);
    let mut got = vec![c.read_value(), c.read_value()];
    got.sort_by_key(|v| format!("{v:?}"));
    let last = got.iter().map(|v| int(&v.items()[2])).min().unwrap();
    assert_eq!(last, 0, "{got:?}");
    let names: BTreeSet<String> = got.iter().map(|v| text(&v.items()[1])).collect();
    assert_eq!(names, ["p.*", "q.*"].iter().map(|s| s.to_string()).collect());
    for v in &got {
        assert_eq!(v.items()[0], b("punsubscribe"));
    }
    // Nothing left: one reply with a nil name and count 0.
    assert_eq!(c.cmd(&["UNSUBSCRIBE"]), confirm("unsubscribe", None, 0));
    assert_eq!(c.cmd(&["PUNSUBSCRIBE"]), confirm("punsubscribe", None, 0));
    // Out of the subscribed context: normal commands work again.
    ok(&c.cmd(&["SET", "k", "v"]));
    assert_eq!(c.cmd(&["GET", "k"]), b("v"));
    err_eq(&c.cmd(&["SUBSCRIBE"]), "ERR wrong number of arguments for 'subscribe' command");
}

#[test]
fn publish_delivers_to_channel_and_pattern_subscribers() {
    let s = Server::start(&[]);
    let mut sub1 = s.client();
    let mut sub2 = s.client();
    let mut psub = s.client();
    let mut p = s.client();
    assert_eq!(p.cmd(&["PUBLISH", "news.tech", "nobody"]), Value::Int(0));
    assert_eq!(sub1.cmd(&["SUBSCRIBE", "news.tech"]), confirm("subscribe", Some("news.tech"), 1));
    assert_eq!(sub2.cmd(&["SUBSCRIBE", "news.tech"]), confirm("subscribe", Some("news.tech"), 1));
    assert_eq!(psub.cmd(&["PSUBSCRIBE", "news.*"]), confirm("psubscribe", Some("news.*"), 1));
    // Binary-safe payload.
    let payload: &[u8] = b"hi\r\n\x00\xff";
    assert_eq!(p.cmd(&[b"PUBLISH".as_ref(), b"news.tech", payload]), Value::Int(3));
    let msg = arr(vec![b("message"), b("news.tech"), Value::Bulk(payload.to_vec())]);
    assert_eq!(sub1.read_value(), msg);
    assert_eq!(sub2.read_value(), msg);
    assert_eq!(psub.read_value(), arr(vec![b("pmessage"), b("news.*"), b("news.tech"), Value::Bulk(payload.to_vec())]));
    // Only the pattern matches here; newsx does not match news.*.
    assert_eq!(p.cmd(&["PUBLISH", "news.art", "a"]), Value::Int(1));
    assert_eq!(p.cmd(&["PUBLISH", "newsx", "b"]), Value::Int(0));
    assert_eq!(psub.read_value(), arr(vec![b("pmessage"), b("news.*"), b("news.art"), b("a")]));
    // Messages to one subscriber arrive in publish order.
    for i in 0..200 {
        assert_eq!(p.cmd(&["PUBLISH", "news.tech", &i.to_string()]), Value::Int(3));
    }
    for i in 0..200 {
        let m = arr(vec![b("message"), b("news.tech"), b(&i.to_string())]);
        assert_eq!(sub1.read_value(), m);
        assert_eq!(sub2.read_value(), m);
    }
    // A subscriber that leaves stops counting.
    assert_eq!(sub2.cmd(&["UNSUBSCRIBE", "news.tech"]), confirm("unsubscribe", Some("news.tech"), 0));
    drop(psub);
    common::eventually("the closed subscriber is dropped", || int(&p.cmd(&["PUBLISH", "news.tech", "x"])) == 1);
    // A client subscribed by channel and pattern gets the message twice.
    let mut both = s.client();
    both.send(&["SUBSCRIBE", "t"]);
    both.read_value();
    both.send(&["PSUBSCRIBE", "t*"]);
    both.read_value();
    assert_eq!(p.cmd(&["PUBLISH", "t", "m"]), Value::Int(2));
    let got = [both.read_value(), both.read_value()];
    assert!(got.contains(&arr(vec![b("message"), b("t"), b("m")])), "{got:?}");
    assert!(got.contains(&arr(vec![b("pmessage"), b("t*"), b("t"), b("m")])), "{got:?}");
}

#[test]
fn resp2_subscribed_context_refuses_other_commands() {
    let s = Server::start(&[]);
    let mut c = s.client();
    c.cmd(&["SUBSCRIBE", "ch"]);
    err_eq(&c.cmd(&["GET", "k"]), "ERR Can't execute 'get': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context");
    err_eq(&c.cmd(&["set", "k", "v"]), "ERR Can't execute 'set': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context");
    // Still subscribed after the refusals.
    let mut p = s.client();
    assert_eq!(p.cmd(&["PUBLISH", "ch", "m"]), Value::Int(1));
    assert_eq!(c.read_value(), arr(vec![b("message"), b("ch"), b("m")]));
    assert_eq!(p.cmd(&["GET", "k"]), Value::NilBulk, "the refused SET did not run");
}

#[test]
fn resp2_ping_while_subscribed() {
    let s = Server::start(&[]);
    let mut c = s.client();
    c.cmd(&["SUBSCRIBE", "ch"]);
    // In the RESP2 subscribed context PING answers a two-element array.
    assert_eq!(c.cmd(&["PING"]), arr(vec![b("pong"), b("")]));
    assert_eq!(c.cmd(&["PING", "hi"]), arr(vec![b("pong"), b("hi")]));
    assert_eq!(c.cmd(&["UNSUBSCRIBE"]), confirm("unsubscribe", Some("ch"), 0));
    assert_eq!(c.cmd(&["PING"]), Value::Simple("PONG".into()));
}

#[test]
fn resp3_pushes_interleave_with_normal_commands() {
    let s = Server::start(&[]);
    let mut c = s.client();
    let hello = c.cmd(&["HELLO", "3"]);
    assert_eq!(hello.get("proto"), Some(Value::Int(3)), "{hello:?}");
    assert_eq!(c.cmd(&["SUBSCRIBE", "ch"]), push("subscribe", Some("ch"), 1));
    assert_eq!(c.cmd(&["PSUBSCRIBE", "c*"]), push("psubscribe", Some("c*"), 2));
    // RESP3 allows every command while subscribed.
    ok(&c.cmd(&["SET", "k", "v"]));
    assert_eq!(c.cmd(&["GET", "k"]), b("v"));
    assert_eq!(c.cmd(&["GET", "missing"]), Value::Null);
    assert_eq!(c.cmd(&["PING"]), Value::Simple("PONG".into()));
    let mut p = s.client();
    assert_eq!(p.cmd(&["PUBLISH", "ch", "m1"]), Value::Int(2));
    // The pushes are out of band: read until the reply to GET shows up,
    // whatever the order.
    c.send(&["GET", "k"]);
    let mut pushes = Vec::new();
    let mut reply = None;
    while reply.is_none() || pushes.len() < 2 {
        match c.read_value() {
            Value::Push(p) => pushes.push(Value::Push(p)),
            other => {
                assert!(reply.is_none(), "two replies to one GET: {other:?}");
                reply = Some(other);
            }
        }
    }
    assert_eq!(reply, Some(b("v")));
    assert!(pushes.contains(&Value::Push(vec![b("message"), b("ch"), b("m1")])), "{pushes:?}");
    assert!(pushes.contains(&Value::Push(vec![b("pmessage"), b("c*"), b("ch"), b("m1")])), "{pushes:?}");
    assert_eq!(c.cmd(&["UNSUBSCRIBE", "ch"]), push("unsubscribe", Some("ch"), 1));
    assert_eq!(c.cmd(&["PUNSUBSCRIBE", "c*"]), push("punsubscribe", Some("c*"), 0));
    assert_eq!(c.cmd(&["UNSUBSCRIBE"]), push("unsubscribe", None, 0));
    // A RESP2 publisher and a RESP3 subscriber: the encoding follows the subscriber.
    assert_eq!(c.cmd(&["SUBSCRIBE", "x"]), push("subscribe", Some("x"), 1));
    assert_eq!(p.cmd(&["PUBLISH", "x", "y"]), Value::Int(1));
    assert_eq!(c.read_value(), Value::Push(vec![b("message"), b("x"), b("y")]));
}

#[test]
fn pubsub_introspection() {
    let s = Server::start(&[]);
    let mut c1 = s.client();
    let mut c2 = s.client();
    let mut q = s.client();
    assert_eq!(q.cmd(&["PUBSUB", "CHANNELS"]), arr(vec![]));
    assert_eq!(q.cmd(&["PUBSUB", "NUMPAT"]), Value::Int(0));
    c1.send(&["SUBSCRIBE", "news.a", "news.b", "other"]);
    for _ in 0..3 {
        c1.read_value();
    }
    c2.send(&["SUBSCRIBE", "news.a"]);
    c2.read_value();
    c2.send(&["PSUBSCRIBE", "news.*", "x*"]);
    c2.read_value();
    c2.read_value();
    c1.send(&["PSUBSCRIBE", "news.*"]);
    c1.read_value();
    let sorted = |v: Value| -> Vec<String> {
        let mut names: Vec<String> = v.items().iter().map(text).collect();
        names.sort();
        names
    };
    assert_eq!(sorted(q.cmd(&["PUBSUB", "CHANNELS"])), ["news.a", "news.b", "other"]);
    assert_eq!(sorted(q.cmd(&["PUBSUB", "CHANNELS", "news.*"])), ["news.a", "news.b"]);
    assert_eq!(sorted(q.cmd(&["PUBSUB", "channels", "nomatch*"])), Vec::<String>::new());
    assert_eq!(q.cmd(&["PUBSUB", "NUMSUB", "news.a", "news.b", "none"]), arr(vec![b("news.a"), Value::Int(2), b("news.b"), Value::Int(1), b("none"), Value::Int(0)]));
    assert_eq!(q.cmd(&["PUBSUB", "NUMSUB"]), arr(vec![]));
    // Patterns are counted once however many clients use them.
    assert_eq!(q.cmd(&["PUBSUB", "NUMPAT"]), Value::Int(2));
    err_eq(&q.cmd(&["PUBSUB", "NOSUCH"]), "ERR unknown subcommand 'NOSUCH'. Try PUBSUB HELP.");
    err_eq(&q.cmd(&["PUBSUB", "NUMPAT", "extra"]), "ERR wrong number of arguments for 'pubsub|numpat' command");
    // CHANNELS takes "[pattern]": Redis 7 checks that inside the subcommand.
    err_eq(&q.cmd(&["PUBSUB", "CHANNELS", "a", "b"]), "ERR unknown subcommand or wrong number of arguments for 'CHANNELS'. Try PUBSUB HELP.");
    // Closed connections leave no subscriptions behind.
    drop(c1);
    drop(c2);
    common::eventually("subscriptions of closed clients go", || q.cmd(&["PUBSUB", "CHANNELS"]) == arr(vec![]) && q.cmd(&["PUBSUB", "NUMPAT"]) == Value::Int(0));
}
