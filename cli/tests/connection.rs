//! Connection commands over real sockets: PING/ECHO, AUTH and
//! --requirepass, HELLO 2/3, CLIENT, SELECT, QUIT, RESET, inline commands,
//! unknown commands and case-insensitive names, with Redis 7's texts.

mod common;

use common::*;

const NOAUTH: &str = "NOAUTH Authentication required.";
const WRONGPASS: &str = "WRONGPASS invalid username-password pair or user is disabled.";

#[test]
fn ping_and_echo() {
    let s = Server::start(&[]);
    let mut c = s.client();
    assert_eq!(c.cmd(&["PING"]), Value::Simple("PONG".into()));
    assert_eq!(c.cmd(&["PING", "hello world"]), b("hello world"));
    assert_eq!(c.cmd(&["ECHO", "a\r\nb"]), b("a\r\nb"));
    assert_eq!(c.cmd(&["ECHO", ""]), b(""));
    err_eq(&c.cmd(&["PING", "a", "b"]), "ERR wrong number of arguments for 'ping' command");
    err_eq(&c.cmd(&["ECHO"]), "ERR wrong number of arguments for 'echo' command");
    assert_eq!(c.cmd(&["ping"]), Value::Simple("PONG".into()));
}

#[test]
fn unknown_commands_and_case_insensitive_names() {
    let s = Server::start(&[]);
    let mut c = s.client();
    err_eq(&c.cmd(&["NOSUCH", "a", "b"]), "ERR unknown command 'NOSUCH', with args beginning with: 'a' 'b' ");
    err_eq(&c.cmd(&["nosuch"]), "ERR unknown command 'nosuch', with args beginning with: ");
    // The connection goes on after an unknown command.
    ok(&c.cmd(&["sEt", "k", "v"]));
    assert_eq!(c.cmd(&["get", "k"]), b("v"));
    assert_eq!(c.cmd(&["GeT", "k"]), b("v"));
    assert_eq!(c.cmd(&["mget", "k", "K"]), arr(vec![b("v"), Value::NilBulk]), "keys stay case-sensitive");
    // A name longer than any command, and one with odd bytes.
    let long = "X".repeat(100);
    err_starts_with(&c.cmd(&[long.as_str()]), "ERR unknown command 'XXXX");
    err_eq(&c.cmd(&["GET"]), "ERR wrong number of arguments for 'get' command");
    err_eq(&c.cmd(&["get", "a", "b"]), "ERR wrong number of arguments for 'get' command");
}

#[test]
fn inline_commands() {
    let s = Server::start(&[]);
    let mut c = s.client();
    // CRLF or bare LF; extra spaces; empty lines are ignored.
    c.send_raw(b"SET k v\r\nGET k\n\r\n   \r\n  get   k  \r\n");
    ok(&c.read_value());
    assert_eq!(c.read_value(), b("v"));
    assert_eq!(c.read_value(), b("v"));
    // Double quotes take escapes (\n, \xHH, \"), single quotes take \'.
    c.send_raw(b"SET q \"a b\\x41\\n\\\"\"\r\nGET q\r\n");
    ok(&c.read_value());
    assert_eq!(c.read_value(), b("a bA\n\""));
    c.send_raw(b"SET 'my key' 'x y'\r\nGET \"my key\"\r\n");
    ok(&c.read_value());
    assert_eq!(c.read_value(), b("x y"));
    c.send_raw(b"SET e \"\"\r\nSTRLEN e\r\n");
    ok(&c.read_value());
    assert_eq!(c.read_value(), Value::Int(0));
    // Inline and multibulk mix on one connection.
    let mut wire = b"INCR n\r\n".to_vec();
    wire.extend(Client::encode(&["INCR", "n"]));
    wire.extend(b"INCR n\n");
    c.send_raw(&wire);
    for i in 1..=3 {
        assert_eq!(c.read_value(), Value::Int(i));
    }
    // Unknown inline commands get the same text.
    c.send_raw(b"nosuch x y\r\n");
    err_eq(&c.read_value(), "ERR unknown command 'nosuch', with args beginning with: 'x' 'y' ");
}

/// Inside single quotes `\'` is a quote (as in redis-cli's sdssplitargs).
#[test]
fn inline_single_quote_escape() {
    let s = Server::start(&[]);
    let mut c = s.client();
    c.send_raw(b"SET k 'it\\'s'\r\nGET k\r\n");
    ok(&c.read_value());
    assert_eq!(c.read_value(), b("it's"));
}

/// Unbalanced quotes, and (as Redis's sdssplitargs wants) a closing quote
/// that does not end its argument (`"a"b`, `'it''s'`), are protocol errors.
#[test]
fn inline_quote_errors_close_the_connection() {
    let s = Server::start(&[]);
    for line in [&b"SET k \"abc\r\n"[..], b"SET k 'abc\r\n", b"SET k abc\"\r\n", b"SET k \"a\"b\r\n", b"SET k 'it''s'\r\n"] {
        let mut c = s.client();
        c.send_raw(line);
        err_eq(&c.read_value(), "ERR Protocol error: unbalanced quotes in request");
        c.assert_closed();
    }
    let mut c = s.client();
    assert_eq!(c.cmd(&["GET", "k"]), Value::NilBulk, "nothing ran");
}

#[test]
fn select() {
    let s = Server::start(&[]);
    let mut c = s.client();
    ok(&c.cmd(&["SELECT", "0"]));
    ok(&c.cmd(&["SET", "k", "v"]));
    err_eq(&c.cmd(&["SELECT", "16"]), "ERR DB index is out of range");
    err_eq(&c.cmd(&["SELECT", "-1"]), "ERR DB index is out of range");
    err_eq(&c.cmd(&["SELECT", "abc"]), "ERR value is not an integer or out of range");
    err_eq(&c.cmd(&["SELECT"]), "ERR wrong number of arguments for 'select' command");
    // Still on database 0.
    assert_eq!(c.cmd(&["GET", "k"]), b("v"));
}

#[test]
fn auth_without_requirepass() {
    let s = Server::start(&[]);
    let mut c = s.client();
    err_eq(&c.cmd(&["AUTH", "x"]), "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?");
    err_eq(&c.cmd(&["AUTH", "a", "b", "c"]), "ERR syntax error");
    ok(&c.cmd(&["SET", "k", "v"]));
}

#[test]
fn auth_with_requirepass() {
    let Some(s) = Server::try_start(&["--requirepass", "s3cret"]) else { return };
    let mut c = s.client();
    err_eq(&c.cmd(&["GET", "k"]), NOAUTH);
    err_eq(&c.cmd(&["SET", "k", "v"]), NOAUTH);
    err_eq(&c.cmd(&["PING"]), NOAUTH);
    err_eq(&c.cmd(&["NOSUCH"]), "ERR unknown command 'NOSUCH', with args beginning with: ");
    err_eq(&c.cmd(&["AUTH", "wrong"]), WRONGPASS);
    err_eq(&c.cmd(&["AUTH", "default", "wrong"]), WRONGPASS);
    err_eq(&c.cmd(&["AUTH", "someone", "s3cret"]), WRONGPASS);
    err_eq(&c.cmd(&["GET", "k"]), NOAUTH);
    ok(&c.cmd(&["AUTH", "s3cret"]));
    ok(&c.cmd(&["SET", "k", "v"]));
    assert_eq!(c.cmd(&["PING"]), Value::Simple("PONG".into()));
    // A wrong AUTH on an authenticated connection keeps it authenticated.
    err_eq(&c.cmd(&["AUTH", "wrong"]), WRONGPASS);
    assert_eq!(c.cmd(&["GET", "k"]), b("v"));
    // The username form.
    let mut c2 = s.client();
    ok(&c2.cmd(&["AUTH", "default", "s3cret"]));
    assert_eq!(c2.cmd(&["GET", "k"]), b("v"));
    // HELLO needs authentication first, or does it itself.
    let mut c3 = s.client();
    err_starts_with(&c3.cmd(&["HELLO", "3"]), "NOAUTH HELLO must be called with the client already authenticated");
    err_eq(&c3.cmd(&["HELLO", "3", "AUTH", "default", "wrong"]), WRONGPASS);
    let hello = c3.cmd(&["HELLO", "3", "AUTH", "default", "s3cret"]);
    assert_eq!(hello.get("proto"), Some(Value::Int(3)), "{hello:?}");
    assert_eq!(c3.cmd(&["GET", "k"]), b("v"));
    // QUIT works before AUTH.
    let mut c4 = s.client();
    ok(&c4.cmd(&["QUIT"]));
    c4.assert_closed();
}

#[test]
fn hello_switches_protocols() {
    let s = Server::start(&[]);
    let mut c = s.client();
    // No argument: the current protocol (2), as a flat RESP2 array of pairs.
    let h = c.cmd(&["HELLO"]);
    assert!(matches!(h, Value::Array(_)), "{h:?}");
    assert_eq!(h.get("proto"), Some(Value::Int(2)));
    let h = c.cmd(&["HELLO", "3"]);
    let Value::Map(_) = h else { panic!("HELLO 3 answers a RESP3 map: {h:?}") };
    for field in ["server", "version", "proto", "id", "mode", "role", "modules"] {
        assert!(h.get(field).is_some(), "HELLO lacks {field}: {h:?}");
    }
    assert_eq!(h.get("proto"), Some(Value::Int(3)));
    assert_eq!(h.get("role"), Some(b("master")));
    let id = int(&h.get("id").unwrap());
    assert_eq!(c.cmd(&["CLIENT", "ID"]), Value::Int(id));
    assert_eq!(c.cmd(&["GET", "missing"]), Value::Null);
    ok(&c.cmd(&["SET", "k", "v"]));
    assert_eq!(c.cmd(&["GET", "k"]), b("v"));
    // Back to RESP2.
    let h = c.cmd(&["HELLO", "2"]);
    assert!(matches!(h, Value::Array(_)), "{h:?}");
    assert_eq!(c.cmd(&["GET", "missing"]), Value::NilBulk);
    err_eq(&c.cmd(&["HELLO", "4"]), "NOPROTO unsupported protocol version");
    err_eq(&c.cmd(&["HELLO", "1"]), "NOPROTO unsupported protocol version");
    err_eq(&c.cmd(&["HELLO", "abc"]), "ERR Protocol version is not an integer or out of range");
    // A failed HELLO leaves the protocol as it was.
    assert_eq!(c.cmd(&["GET", "missing"]), Value::NilBulk);
    // SETNAME in HELLO.
    let h = c.cmd(&["HELLO", "3", "SETNAME", "worker-1"]);
    assert_eq!(h.get("proto"), Some(Value::Int(3)));
    assert_eq!(c.cmd(&["CLIENT", "GETNAME"]), b("worker-1"));
}

#[test]
fn client_commands() {
    let s = Server::start(&[]);
    let mut c = s.client();
    let mut other = s.client();
    let id = int(&c.cmd(&["CLIENT", "ID"]));
    let other_id = int(&other.cmd(&["CLIENT", "ID"]));
    assert_ne!(id, other_id);
    assert_eq!(c.cmd(&["CLIENT", "GETNAME"]), Value::NilBulk);
    ok(&c.cmd(&["CLIENT", "SETNAME", "my-conn"]));
    assert_eq!(c.cmd(&["CLIENT", "GETNAME"]), b("my-conn"));
    err_eq(&c.cmd(&["CLIENT", "SETNAME", "bad name"]), "ERR Client names cannot contain spaces, newlines or special characters.");
    assert_eq!(c.cmd(&["CLIENT", "GETNAME"]), b("my-conn"));
    // CLIENT LIST: one line per client, ours with its id, name and address.
    let list = c.cmd(&["CLIENT", "LIST"]).as_text().expect("CLIENT LIST text");
    let mine = list.lines().find(|l| l.starts_with(&format!("id={id} "))).unwrap_or_else(|| panic!("no line for id {id}: {list}"));
    assert!(mine.contains(" name=my-conn "), "{mine}");
    assert!(mine.contains(" addr=127.0.0.1:"), "{mine}");
    assert!(list.lines().any(|l| l.starts_with(&format!("id={other_id} "))), "{list}");
    let info = c.cmd(&["CLIENT", "INFO"]).as_text().expect("CLIENT INFO text");
    assert!(info.starts_with(&format!("id={id} ")) && info.contains(" name=my-conn "), "{info}");
    // An empty name clears it.
    ok(&c.cmd(&["CLIENT", "SETNAME", ""]));
    assert_eq!(c.cmd(&["CLIENT", "GETNAME"]), Value::NilBulk);
    // KILL by id closes the other connection; unknown ids kill nothing.
    assert_eq!(c.cmd(&["CLIENT", "KILL", "ID", "999999999"]), Value::Int(0));
    err_eq(&c.cmd(&["CLIENT", "KILL", "10.0.0.1:1"]), "ERR No such client");
    assert_eq!(c.cmd(&["CLIENT", "KILL", "ID", &other_id.to_string()]), Value::Int(1));
    other.assert_closed();
    common::eventually("the killed client leaves CLIENT LIST", || {
        let list = c.cmd(&["CLIENT", "LIST"]).as_text().unwrap();
        !list.lines().any(|l| l.starts_with(&format!("id={other_id} ")))
    });
    err_eq(&c.cmd(&["CLIENT", "FOO"]), "ERR unknown subcommand 'FOO'. Try CLIENT HELP.");
    err_eq(&c.cmd(&["CLIENT"]), "ERR wrong number of arguments for 'client' command");
    err_eq(&c.cmd(&["CLIENT", "SETNAME"]), "ERR wrong number of arguments for 'client|setname' command");
}

#[test]
fn quit_replies_then_closes() {
    let s = Server::start(&[]);
    let mut c = s.client();
    ok(&c.cmd(&["SET", "before", "1"]));
    // Commands pipelined after QUIT never run.
    let mut wire = Client::encode(&["QUIT"]);
    wire.extend(Client::encode(&["SET", "after", "1"]));
    c.send_raw(&wire);
    ok(&c.read_value());
    c.assert_closed();
    let mut c = s.client();
    assert_eq!(c.cmd(&["MGET", "before", "after"]), arr(vec![b("1"), Value::NilBulk]));
}

#[test]
fn reset_returns_the_connection_to_its_initial_state() {
    let s = Server::start(&[]);
    let mut c = s.client();
    let mut other = s.client();
    // MULTI and WATCH end.
    ok(&c.cmd(&["SET", "w", "1"]));
    ok(&c.cmd(&["WATCH", "w"]));
    ok(&c.cmd(&["MULTI"]));
    assert_eq!(c.cmd(&["SET", "queued", "x"]), Value::Simple("QUEUED".into()));
    assert_eq!(c.cmd(&["RESET"]), Value::Simple("RESET".into()));
    err_eq(&c.cmd(&["EXEC"]), "ERR EXEC without MULTI");
    assert_eq!(c.cmd(&["GET", "queued"]), Value::NilBulk);
    ok(&other.cmd(&["SET", "w", "2"]));
    ok(&c.cmd(&["MULTI"]));
    c.cmd(&["GET", "w"]);
    assert_eq!(c.cmd(&["EXEC"]), arr(vec![b("2")]), "the WATCH was dropped by RESET");
    // Subscriptions end.
    c.cmd(&["SUBSCRIBE", "ch"]);
    assert_eq!(c.cmd(&["RESET"]), Value::Simple("RESET".into()));
    assert_eq!(other.cmd(&["PUBLISH", "ch", "m"]), Value::Int(0));
    assert_eq!(c.cmd(&["GET", "w"]), b("2"));
    // RESP3 and the name go back to their defaults.
    c.cmd(&["HELLO", "3"]);
    ok(&c.cmd(&["CLIENT", "SETNAME", "named"]));
    assert_eq!(c.cmd(&["RESET"]), Value::Simple("RESET".into()));
    assert_eq!(c.cmd(&["GET", "missing"]), Value::NilBulk);
    assert_eq!(c.cmd(&["CLIENT", "GETNAME"]), Value::NilBulk);
}

#[test]
fn reset_deauthenticates() {
    let Some(s) = Server::try_start(&["--requirepass", "pw"]) else { return };
    let mut c = s.client();
    ok(&c.cmd(&["AUTH", "pw"]));
    ok(&c.cmd(&["SET", "k", "v"]));
    assert_eq!(c.cmd(&["RESET"]), Value::Simple("RESET".into()));
    err_eq(&c.cmd(&["GET", "k"]), NOAUTH);
    ok(&c.cmd(&["AUTH", "pw"]));
    assert_eq!(c.cmd(&["GET", "k"]), b("v"));
}
