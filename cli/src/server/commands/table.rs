//! Every command the server knows: name, arity (Redis convention: the
//! name counts; negative = at least), flags, key positions (first, last,
//! step; last -1 = to the end), group and summary (for COMMAND), handler.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::OnceLock;

use super::flag::*;
use super::{admin, connection, expire, fenced, keys, lists, lists_blocking, pubsub, scan, strings, txn, zrange, zsets, Ctx};

pub type Handler = for<'a, 't> fn(&mut Ctx<'a, 't>, &[&[u8]]);

pub struct Spec {
    pub name: &'static str,
    pub arity: i32,
    pub flags: u32,
    pub first: i32,
    pub last: i32,
    pub step: i32,
    pub group: &'static str,
    pub summary: &'static str,
    pub run: Handler,
}

impl Spec {
    /// This command's position in `COMMANDS`: the index of its counters
    /// (`server::metrics`). Every `Spec` lives in that table.
    pub fn index(&self) -> usize {
        let i = (self as *const Spec as usize).wrapping_sub(COMMANDS.as_ptr() as usize) / std::mem::size_of::<Spec>();
        debug_assert!(std::ptr::eq(&COMMANDS[i], self));
        i
    }

    /// The key arguments of a call of this command.
    pub fn keys<'k>(&self, argv: &[&'k [u8]]) -> Vec<&'k [u8]> {
        // DBKV.FENCED's keys are the lock key and its inner command's.
        if self.name == "dbkv.fenced" {
            return fenced::keys(argv);
        }
        if self.first <= 0 || self.step <= 0 {
            return Vec::new();
        }
        let n = argv.len() as i32;
        let last = if self.last < 0 { n + self.last } else { self.last.min(n - 1) };
        (self.first..=last).step_by(self.step as usize).filter(|&i| i < n).map(|i| argv[i as usize]).collect()
    }

    /// Flag names as COMMAND reports them.
    pub fn flag_names(&self) -> Vec<&'static str> {
        [(WRITE, "write"), (READONLY, "readonly"), (ADMIN, "admin"), (NOAUTH, "no-auth"), (FAST, "fast"), (NO_MULTI, "no-multi"), (PUBSUB, "pubsub"), (PUBSUB_OK, "allow-busy")]
            .iter()
            .filter(|(f, _)| self.flags & f != 0)
            .map(|(_, n)| *n)
            .collect()
    }
}

macro_rules! cmd {
    ($name:literal, $arity:expr, $flags:expr, $keys:expr, $group:literal, $summary:literal, $run:path) => {
        Spec { name: $name, arity: $arity, flags: $flags, first: $keys.0, last: $keys.1, step: $keys.2, group: $group, summary: $summary, run: $run }
    };
}

const NOKEYS: (i32, i32, i32) = (0, 0, 0);
const KEY1: (i32, i32, i32) = (1, 1, 1);
const ALLARGS: (i32, i32, i32) = (1, -1, 1);

pub static COMMANDS: &[Spec] = &[
    // strings
    cmd!("get", 2, READONLY | FAST, KEY1, "string", "Returns the string value of a key.", strings::get),
    cmd!("set", -3, WRITE, KEY1, "string", "Sets the string value of a key, ignoring its type. The key is created if it doesn't exist.", strings::set),
    cmd!("setnx", 3, WRITE | FAST, KEY1, "string", "Set the string value of a key only when the key doesn't exist.", strings::setnx),
    cmd!("setex", 4, WRITE, KEY1, "string", "Sets the string value and expiration time of a key. Creates the key if it doesn't exist.", strings::setex),
    cmd!("psetex", 4, WRITE, KEY1, "string", "Sets both string value and expiration time in milliseconds of a key. The key is created if it doesn't exist.", strings::psetex),
    cmd!("getdel", 2, WRITE | FAST, KEY1, "string", "Returns the string value of a key after deleting the key.", strings::getdel),
    cmd!("getex", -2, WRITE | FAST, KEY1, "string", "Returns the string value of a key after setting its expiration time.", strings::getex),
    cmd!("getset", 3, WRITE | FAST, KEY1, "string", "Returns the previous string value of a key after setting it to a new value.", strings::getset),
    cmd!("mget", -2, READONLY | FAST, ALLARGS, "string", "Atomically returns the string values of one or more keys.", strings::mget),
    cmd!("mset", -3, WRITE, (1, -1, 2), "string", "Atomically creates or modifies the string values of one or more keys.", strings::mset),
    cmd!("msetnx", -3, WRITE, (1, -1, 2), "string", "Atomically modifies the string values of one or more keys only when all keys don't exist.", strings::msetnx),
    cmd!("incr", 2, WRITE | FAST, KEY1, "string", "Increments the integer value of a key by one. Uses 0 as initial value if the key doesn't exist.", strings::incr),
    cmd!("incrby", 3, WRITE | FAST, KEY1, "string", "Increments the integer value of a key by a number. Uses 0 as initial value if the key doesn't exist.", strings::incrby),
    cmd!("decr", 2, WRITE | FAST, KEY1, "string", "Decrements the integer value of a key by one. Uses 0 as initial value if the key doesn't exist.", strings::decr),
    cmd!("decrby", 3, WRITE | FAST, KEY1, "string", "Decrements a number from the integer value of a key. Uses 0 as initial value if the key doesn't exist.", strings::decrby),
    cmd!("incrbyfloat", 3, WRITE | FAST, KEY1, "string", "Increment the floating point value of a key by a number. Uses 0 as initial value if the key doesn't exist.", strings::incrbyfloat),
    cmd!("append", 3, WRITE | FAST, KEY1, "string", "Appends a string to the value of a key. Creates the key if it doesn't exist.", strings::append),
    cmd!("strlen", 2, READONLY | FAST, KEY1, "string", "Returns the length of a string value.", strings::strlen),
    cmd!("getrange", 4, READONLY, KEY1, "string", "Returns a substring of the string stored at a key.", strings::getrange),
    cmd!("setrange", 4, WRITE, KEY1, "string", "Overwrites a part of a string value with another by an offset. Creates the key if it doesn't exist.", strings::setrange),
    // keys
    cmd!("del", -2, WRITE, ALLARGS, "generic", "Deletes one or more keys.", keys::del),
    cmd!("unlink", -2, WRITE | FAST, ALLARGS, "generic", "Asynchronously deletes one or more keys.", keys::del),
    cmd!("exists", -2, READONLY | FAST, ALLARGS, "generic", "Determines whether one or more keys exist.", keys::exists),
    cmd!("expire", -3, WRITE | FAST, KEY1, "generic", "Sets the expiration time of a key in seconds.", expire::expire),
    cmd!("pexpire", -3, WRITE | FAST, KEY1, "generic", "Sets the expiration time of a key in milliseconds.", expire::pexpire),
    cmd!("expireat", -3, WRITE | FAST, KEY1, "generic", "Sets the expiration time of a key to a Unix timestamp.", expire::expireat),
    cmd!("pexpireat", -3, WRITE | FAST, KEY1, "generic", "Sets the expiration time of a key to a Unix milliseconds timestamp.", expire::pexpireat),
    cmd!("ttl", 2, READONLY | FAST, KEY1, "generic", "Returns the expiration time in seconds of a key.", expire::ttl),
    cmd!("pttl", 2, READONLY | FAST, KEY1, "generic", "Returns the expiration time in milliseconds of a key.", expire::pttl),
    cmd!("expiretime", 2, READONLY | FAST, KEY1, "generic", "Returns the expiration time of a key as a Unix timestamp.", expire::expiretime),
    cmd!("pexpiretime", 2, READONLY | FAST, KEY1, "generic", "Returns the expiration time of a key as a Unix milliseconds timestamp.", expire::pexpiretime),
    cmd!("persist", 2, WRITE | FAST, KEY1, "generic", "Removes the expiration time of a key.", expire::persist),
    cmd!("type", 2, READONLY | FAST, KEY1, "generic", "Determines the type of value stored at a key.", keys::type_),
    cmd!("scan", -2, READONLY | ALL_KEYS, NOKEYS, "generic", "Iterates over the key names in the database.", scan::scan),
    cmd!("keys", 2, READONLY | ALL_KEYS, NOKEYS, "generic", "Returns all key names that match a pattern.", scan::keys),
    cmd!("dbsize", 1, READONLY | FAST | ALL_KEYS, NOKEYS, "server", "Returns the number of keys in the database.", scan::dbsize),
    cmd!("flushdb", -1, WRITE | ALL_KEYS, NOKEYS, "server", "Remove all keys from the current database.", keys::flushall),
    cmd!("flushall", -1, WRITE | ALL_KEYS, NOKEYS, "server", "Removes all keys from all databases.", keys::flushall),
    cmd!("randomkey", 1, READONLY | ALL_KEYS, NOKEYS, "generic", "Returns a random key name from the database.", scan::randomkey),
    cmd!("rename", 3, WRITE, (1, 2, 1), "generic", "Renames a key and overwrites the destination.", keys::rename),
    cmd!("renamenx", 3, WRITE | FAST, (1, 2, 1), "generic", "Renames a key only when the target key name doesn't exist.", keys::renamenx),
    cmd!("copy", -3, WRITE, (1, 2, 1), "generic", "Copies the value of a key to a new key.", keys::copy),
    // lists
    cmd!("blmove", 6, WRITE, (1, 2, 1), "list", "Pops an element from a list, pushes it to another list and returns it. Blocks until an element is available otherwise. Deletes the list if the last element was moved.", lists_blocking::blmove),
    cmd!("blpop", -3, WRITE, (1, -2, 1), "list", "Removes and returns the first element in a list. Blocks until an element is available otherwise. Deletes the list if the last element was popped.", lists_blocking::blpop),
    cmd!("brpop", -3, WRITE, (1, -2, 1), "list", "Removes and returns the last element in a list. Blocks until an element is available otherwise. Deletes the list if the last element was popped.", lists_blocking::brpop),
    cmd!("brpoplpush", 4, WRITE, (1, 2, 1), "list", "Pops an element from a list, pushes it to another list and returns it. Block until an element is available otherwise. Deletes the list if the last element was popped.", lists_blocking::brpoplpush),
    cmd!("lindex", 3, READONLY, KEY1, "list", "Returns an element from a list by its index.", lists::lindex),
    cmd!("llen", 2, READONLY | FAST, KEY1, "list", "Returns the length of a list.", lists::llen),
    cmd!("lmove", 5, WRITE, (1, 2, 1), "list", "Returns an element after popping it from one list and pushing it to another. Deletes the list if the last element was moved.", lists::lmove),
    cmd!("lpop", -2, WRITE | FAST, KEY1, "list", "Returns the first elements in a list after removing it. Deletes the list if the last element was popped.", lists::lpop),
    cmd!("lpos", -3, READONLY, KEY1, "list", "Returns the index of matching elements in a list.", lists::lpos),
    cmd!("lpush", -3, WRITE | FAST, KEY1, "list", "Prepends one or more elements to a list. Creates the key if it doesn't exist.", lists::lpush),
    cmd!("lpushx", -3, WRITE | FAST, KEY1, "list", "Prepends one or more elements to a list only when the list exists.", lists::lpushx),
    cmd!("lrange", 4, READONLY, KEY1, "list", "Returns a range of elements from a list.", lists::lrange),
    cmd!("lrem", 4, WRITE, KEY1, "list", "Removes elements from a list. Deletes the list if the last element was removed.", lists::lrem),
    cmd!("lset", 4, WRITE, KEY1, "list", "Sets the value of an element in a list by its index.", lists::lset),
    cmd!("ltrim", 4, WRITE, KEY1, "list", "Removes elements from both ends a list. Deletes the list if all elements were trimmed.", lists::ltrim),
    cmd!("rpop", -2, WRITE | FAST, KEY1, "list", "Returns and removes the last elements of a list. Deletes the list if the last element was popped.", lists::rpop),
    cmd!("rpoplpush", 3, WRITE, (1, 2, 1), "list", "Returns the last element of a list after removing and pushing it to another list. Deletes the list if the last element was popped.", lists::rpoplpush),
    cmd!("rpush", -3, WRITE | FAST, KEY1, "list", "Appends one or more elements to a list. Creates the key if it doesn't exist.", lists::rpush),
    cmd!("rpushx", -3, WRITE | FAST, KEY1, "list", "Appends an element to a list only when the list exists.", lists::rpushx),
    // sorted sets
    cmd!("zadd", -4, WRITE | FAST, KEY1, "sorted-set", "Adds one or more members to a sorted set, or updates their scores. Creates the key if it doesn't exist.", zsets::zadd),
    cmd!("zincrby", 4, WRITE | FAST, KEY1, "sorted-set", "Increments the score of a member in a sorted set.", zsets::zincrby),
    cmd!("zrem", -3, WRITE | FAST, KEY1, "sorted-set", "Removes one or more members from a sorted set. Deletes the sorted set if all members were removed.", zsets::zrem),
    cmd!("zcard", 2, READONLY | FAST, KEY1, "sorted-set", "Returns the number of members in a sorted set.", zsets::zcard),
    cmd!("zscore", 3, READONLY | FAST, KEY1, "sorted-set", "Returns the score of a member in a sorted set.", zsets::zscore),
    cmd!("zmscore", -3, READONLY | FAST, KEY1, "sorted-set", "Returns the score of one or more members in a sorted set.", zsets::zmscore),
    cmd!("zrank", -3, READONLY | FAST, KEY1, "sorted-set", "Returns the index of a member in a sorted set ordered by ascending scores.", zsets::zrank),
    cmd!("zrevrank", -3, READONLY | FAST, KEY1, "sorted-set", "Returns the index of a member in a sorted set ordered by descending scores.", zsets::zrevrank),
    cmd!("zpopmin", -2, WRITE | FAST, KEY1, "sorted-set", "Returns the lowest-scoring members from a sorted set after removing them. Deletes the sorted set if the last member was popped.", zsets::zpopmin),
    cmd!("zpopmax", -2, WRITE | FAST, KEY1, "sorted-set", "Returns the highest-scoring members from a sorted set after removing them. Deletes the sorted set if the last member was popped.", zsets::zpopmax),
    cmd!("zcount", 4, READONLY | FAST, KEY1, "sorted-set", "Returns the count of members in a sorted set that have scores within a range.", zrange::zcount),
    cmd!("zlexcount", 4, READONLY | FAST, KEY1, "sorted-set", "Returns the number of members in a sorted set within a lexicographical range.", zrange::zlexcount),
    cmd!("zrange", -4, READONLY, KEY1, "sorted-set", "Returns members in a sorted set within a range of indexes.", zrange::zrange),
    cmd!("zrevrange", -4, READONLY, KEY1, "sorted-set", "Returns members in a sorted set within a range of indexes in reverse order.", zrange::zrevrange),
    cmd!("zrangebyscore", -4, READONLY, KEY1, "sorted-set", "Returns members in a sorted set within a range of scores.", zrange::zrangebyscore),
    cmd!("zrevrangebyscore", -4, READONLY, KEY1, "sorted-set", "Returns members in a sorted set within a range of scores in reverse order.", zrange::zrevrangebyscore),
    cmd!("zrangebylex", -4, READONLY, KEY1, "sorted-set", "Returns members in a sorted set within a lexicographical range.", zrange::zrangebylex),
    cmd!("zrevrangebylex", -4, READONLY, KEY1, "sorted-set", "Returns members in a sorted set within a lexicographical range in reverse order.", zrange::zrevrangebylex),
    cmd!("zremrangebyscore", 4, WRITE, KEY1, "sorted-set", "Removes members in a sorted set within a range of scores. Deletes the sorted set if all members were removed.", zrange::zremrangebyscore),
    cmd!("zremrangebyrank", 4, WRITE, KEY1, "sorted-set", "Removes members in a sorted set within a range of indexes. Deletes the sorted set if all members were removed.", zrange::zremrangebyrank),
    cmd!("zremrangebylex", 4, WRITE, KEY1, "sorted-set", "Removes members in a sorted set within a lexicographical range. Deletes the sorted set if all members were removed.", zrange::zremrangebylex),
    // connection
    cmd!("ping", -1, FAST | PUBSUB_OK | CONNECTION, NOKEYS, "connection", "Returns the server's liveliness response.", connection::ping),
    cmd!("echo", 2, FAST | CONNECTION, NOKEYS, "connection", "Returns the given string.", connection::echo),
    cmd!("select", 2, FAST | CONNECTION, NOKEYS, "connection", "Changes the selected database.", connection::select),
    cmd!("auth", -2, NOAUTH | FAST | CONNECTION, NOKEYS, "connection", "Authenticates the connection.", connection::auth),
    cmd!("hello", -1, NOAUTH | FAST | CONNECTION, NOKEYS, "connection", "Handshakes with the Redis server.", connection::hello),
    cmd!("client", -2, CONNECTION, NOKEYS, "connection", "A container for client connection commands.", connection::client),
    cmd!("quit", -1, NOAUTH | PUBSUB_OK | FAST | NO_QUEUE | CONNECTION, NOKEYS, "connection", "Closes the connection.", connection::quit),
    cmd!("reset", 1, NOAUTH | PUBSUB_OK | FAST | NO_QUEUE | CONNECTION, NOKEYS, "connection", "Resets the connection.", connection::reset),
    // server
    cmd!("command", -1, CONNECTION, NOKEYS, "server", "Returns detailed information about all commands.", admin::command),
    cmd!("config", -2, ADMIN, NOKEYS, "server", "A container for server configuration commands.", admin::config),
    cmd!("info", -1, 0, NOKEYS, "server", "Returns information and statistics about the server.", admin::info),
    cmd!("time", 1, FAST, NOKEYS, "server", "Returns the server time.", admin::time),
    cmd!("lastsave", 1, FAST, NOKEYS, "server", "Returns the Unix timestamp of the last successful save to disk.", admin::lastsave),
    cmd!("save", 1, ADMIN | NO_MULTI, NOKEYS, "server", "Synchronously saves the database(s) to disk.", admin::save),
    cmd!("bgsave", -1, ADMIN | NO_MULTI, NOKEYS, "server", "Asynchronously saves the database(s) to disk.", admin::bgsave),
    cmd!("shutdown", -1, ADMIN | NO_MULTI, NOKEYS, "server", "Synchronously saves the database(s) to disk and shuts down the Redis server.", admin::shutdown),
    cmd!("dbkv.lock", 4, WRITE | NO_MULTI, KEY1, "dbkv", "Takes or refreshes a lock; returns its fencing token, or nil when another owner holds it.", admin::lock),
    cmd!("dbkv.unlock", 3, WRITE | NO_MULTI, KEY1, "dbkv", "Releases a lock: 1 released, 0 no such lock, -1 held by another owner.", admin::unlock),
    cmd!("dbkv.extendlock", 4, WRITE | NO_MULTI, KEY1, "dbkv", "Extends a held lock: 1 extended, 0 no such lock, -1 held by another owner.", admin::extendlock),
    cmd!("dbkv.fenced", -4, WRITE, KEY1, "dbkv", "Runs a write command only while a lock is held with the given fencing token; -FENCED otherwise.", fenced::fenced),
    cmd!("dbkv.sync", 1, NO_MULTI, NOKEYS, "dbkv", "Returns once every write made before it is durable.", admin::sync),
    // transactions
    cmd!("multi", 1, FAST | NO_QUEUE, NOKEYS, "transactions", "Starts a transaction.", txn::multi),
    cmd!("exec", 1, NO_QUEUE, NOKEYS, "transactions", "Executes all commands in a transaction.", txn::exec),
    cmd!("discard", 1, FAST | NO_QUEUE, NOKEYS, "transactions", "Discards a transaction.", txn::discard),
    cmd!("watch", -2, FAST | NO_QUEUE, ALLARGS, "transactions", "Monitors changes to keys to determine the execution of a transaction.", txn::watch),
    cmd!("unwatch", 1, FAST | NO_QUEUE, NOKEYS, "transactions", "Forgets about watched keys of a transaction.", txn::unwatch),
    // pub/sub
    cmd!("subscribe", -2, PUBSUB | PUBSUB_OK, NOKEYS, "pubsub", "Listens for messages published to channels.", pubsub::subscribe),
    cmd!("unsubscribe", -1, PUBSUB | PUBSUB_OK, NOKEYS, "pubsub", "Stops listening to messages posted to channels.", pubsub::unsubscribe),
    cmd!("psubscribe", -2, PUBSUB | PUBSUB_OK, NOKEYS, "pubsub", "Listens for messages published to channels that match one or more patterns.", pubsub::psubscribe),
    cmd!("punsubscribe", -1, PUBSUB | PUBSUB_OK, NOKEYS, "pubsub", "Stops listening to messages published to channels that match one or more patterns.", pubsub::punsubscribe),
    cmd!("publish", 3, PUBSUB | FAST, NOKEYS, "pubsub", "Posts a message to a channel.", pubsub::publish),
    cmd!("pubsub", -2, PUBSUB, NOKEYS, "pubsub", "A container for Pub/Sub commands.", pubsub::pubsub),
];

/// The spec of a command name, case-insensitively.
pub fn lookup(name: &[u8]) -> Option<&'static Spec> {
    static INDEX: OnceLock<HashMap<&'static [u8], &'static Spec, BuildHasherDefault<Fnv>>> = OnceLock::new();
    let index = INDEX.get_or_init(|| COMMANDS.iter().map(|s| (s.name.as_bytes(), s)).collect());
    let mut buf = [0u8; 32];
    let lower = buf.get_mut(..name.len())?;
    for (d, s) in lower.iter_mut().zip(name) {
        *d = s.to_ascii_lowercase();
    }
    index.get(&*lower).copied()
}

/// FNV-1a: command names are short and not chosen by an attacker who
/// gains anything from collisions (the table is fixed), so the cheapest
/// decent hash wins; SipHash showed in profiles of GET.
#[derive(Default)]
struct Fnv(u64);

impl Hasher for Fnv {
    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 { 0xcbf2_9ce4_8422_2325 } else { self.0 };
        for &b in bytes {
            h = (h ^ b as u64).wrapping_mul(0x100_0000_01b3);
        }
        self.0 = h;
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_ignores_case_and_key_positions_follow_redis() {
        assert_eq!(lookup(b"GeT").unwrap().name, "get");
        assert!(lookup(b"nosuch").is_none());
        assert!(lookup(&[b'a'; 40]).is_none());
        let mset = lookup(b"mset").unwrap();
        assert_eq!(mset.keys(&[b"mset", b"a", b"1", b"b", b"2"]), vec![&b"a"[..], b"b"]);
        let rename = lookup(b"rename").unwrap();
        assert_eq!(rename.keys(&[b"rename", b"a", b"b"]), vec![&b"a"[..], b"b"]);
        let blpop = lookup(b"blpop").unwrap();
        assert_eq!(blpop.keys(&[b"blpop", b"a", b"b", b"0"]), vec![&b"a"[..], b"b"]);
        let blmove = lookup(b"blmove").unwrap();
        assert_eq!(blmove.keys(&[b"blmove", b"a", b"b", b"left", b"right", b"0"]), vec![&b"a"[..], b"b"]);
        let copy = lookup(b"copy").unwrap();
        assert_eq!(copy.keys(&[b"copy", b"a", b"b", b"REPLACE"]), vec![&b"a"[..], b"b"]);
        let names: std::collections::HashSet<_> = COMMANDS.iter().map(|s| s.name).collect();
        assert!(COMMANDS.iter().enumerate().all(|(i, s)| s.index() == i));
        assert_eq!(names.len(), COMMANDS.len(), "duplicate command names");
    }
}
