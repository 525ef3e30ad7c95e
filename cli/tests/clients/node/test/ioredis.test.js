// ioredis against the server at $REDIS_HOST:$REDIS_PORT (started by
// ../../run.sh). Each test starts from FLUSHDB. DBKV_CLIENTS_TARGET=redis
// skips the DBKV.* commands so the suite can be proven against a real
// redis-server. ioredis speaks RESP2 and sends INFO as its ready check.
'use strict';

const { describe, it, before, after, beforeEach } = require('node:test');
const assert = require('node:assert/strict');
const Redis = require('ioredis');

const port = process.env.REDIS_PORT;
const host = process.env.REDIS_HOST || '127.0.0.1';
const skip = port ? false : 'REDIS_PORT not set (run ../../run.sh)';
const dbkvSkip = skip || (process.env.DBKV_CLIENTS_TARGET === 'redis' ? 'DBKV.* commands: target is plain Redis' : false);

const open = [];
function connect() {
  const c = new Redis({
    host,
    port: Number(port),
    // Fail fast instead of reconnecting forever when the server is gone.
    retryStrategy: () => null,
    maxRetriesPerRequest: 0,
    commandTimeout: 10000,
  });
  open.push(c);
  return c;
}

// The next event `name` on `emitter`, or a rejection after 5 s.
function nextEvent(emitter, name) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no '${name}' event within 5 s`)), 5000);
    emitter.once(name, (...args) => {
      clearTimeout(timer);
      resolve(args);
    });
  });
}

describe('ioredis', { skip }, () => {
  let r;
  before(() => {
    r = connect();
  });
  beforeEach(async () => {
    assert.equal(await r.flushdb(), 'OK');
  });
  after(async () => {
    // QUIT answers OK and closes the connection: part of the contract too.
    for (const c of open) if (c.status === 'ready') assert.equal(await c.quit(), 'OK');
  });

  it('set/get, binary and empty values', async () => {
    assert.equal(await r.ping(), 'PONG');
    assert.equal(await r.set('node:s', 'hello'), 'OK');
    assert.equal(await r.get('node:s'), 'hello');
    const bin = Buffer.from([0, 13, 10, 255, 128, 120]);
    await r.set('node:bin', bin);
    assert.deepEqual(await r.getBuffer('node:bin'), bin);
    await r.set('node:empty', '');
    assert.equal(await r.get('node:empty'), '');
    assert.equal(await r.get('node:missing'), null);
    assert.equal(await r.set('node:s', 'x', 'NX'), null);
    assert.equal(await r.set('node:s', 'world', 'GET'), 'hello');
    assert.equal(await r.getdel('node:s'), 'world');
    assert.equal(await r.exists('node:s'), 0);
  });

  it('ttl', async () => {
    await r.set('node:t', 'v', 'EX', 100);
    const ttl = await r.ttl('node:t');
    assert.ok(ttl >= 98 && ttl <= 100, `TTL ${ttl}`);
    await r.set('node:p', 'v', 'PX', 100000);
    const pttl = await r.pttl('node:p');
    assert.ok(pttl > 97000 && pttl <= 100000, `PTTL ${pttl}`);
    assert.equal(await r.ttl('node:missing'), -2);
    await r.set('node:short', 'v', 'PX', 50);
    await new Promise((ok) => setTimeout(ok, 200));
    assert.equal(await r.get('node:short'), null);
  });

  it('counters and error replies', async () => {
    assert.equal(await r.incr('node:n'), 1);
    assert.equal(await r.incrby('node:n', 9), 10);
    assert.equal(await r.decr('node:n'), 9);
    assert.equal(await r.incrbyfloat('node:n', 0.5), '9.5');
    await r.set('node:s', 'abc');
    await assert.rejects(r.incr('node:s'), (err) => {
      assert.equal(err.name, 'ReplyError');
      assert.match(err.message, /^ERR value is not an integer/);
      return true;
    });
    await assert.rejects(r.call('NOSUCH', 'a'), /^ReplyError: ERR unknown command 'NOSUCH'/);
  });

  it('mset/mget/del', async () => {
    assert.equal(await r.mset({ 'node:a': '1', 'node:b': '2' }), 'OK');
    assert.deepEqual(await r.mget('node:a', 'node:missing', 'node:b'), ['1', null, '2']);
    assert.equal(await r.del('node:a', 'node:b', 'node:missing'), 2);
    assert.equal(await r.dbsize(), 0);
  });

  it('pipeline of 1000 commands', async () => {
    const p = r.pipeline();
    for (let i = 0; i < 500; i++) p.set(`node:p:${i}`, String(i));
    for (let i = 0; i < 500; i++) p.get(`node:p:${i}`);
    const res = await p.exec();
    assert.equal(res.length, 1000);
    for (let i = 0; i < 500; i++) {
      assert.deepEqual(res[i], [null, 'OK']);
      assert.deepEqual(res[500 + i], [null, String(i)]);
    }
    assert.equal(await r.dbsize(), 500);
  });

  it('multi/exec', async () => {
    const res = await r.multi().set('node:tx', 1).incr('node:tx').get('node:tx').exec();
    assert.deepEqual(res, [[null, 'OK'], [null, 2], [null, '2']]);
  });

  it('watch conflict aborts exec', async () => {
    const c = connect();
    const other = connect();
    await c.set('node:w', '0');
    assert.equal(await c.watch('node:w'), 'OK');
    await other.set('node:w', 'changed');
    // EXEC after a watched key changed answers a null array: ioredis gives null.
    assert.equal(await c.multi().set('node:w', 'mine').exec(), null);
    assert.equal(await c.get('node:w'), 'changed');
    // Untouched, the same transaction commits.
    await c.watch('node:w');
    assert.deepEqual(await c.multi().set('node:w', 'mine').exec(), [[null, 'OK']]);
    assert.equal(await c.get('node:w'), 'mine');
  });

  it('pub/sub with subscribe and psubscribe', async () => {
    const sub = connect();
    const pub = connect();
    // subscribe() resolves on the server's confirmation (subscription count).
    assert.equal(await sub.subscribe('node:chan'), 1);
    const got = nextEvent(sub, 'message');
    assert.equal(await pub.publish('node:chan', 'hello'), 1);
    assert.deepEqual(await got, ['node:chan', 'hello']);

    assert.equal(await sub.psubscribe('node:news.*'), 2);
    const pgot = nextEvent(sub, 'pmessage');
    assert.equal(await pub.publish('node:news.tech', 'pattern'), 1);
    assert.deepEqual(await pgot, ['node:news.*', 'node:news.tech', 'pattern']);

    assert.equal(await sub.unsubscribe('node:chan'), 1);
    assert.equal(await pub.publish('node:chan', 'nobody'), 0);
  });

  it('DBKV.LOCK / UNLOCK / EXTENDLOCK / SYNC', { skip: dbkvSkip }, async () => {
    const key = `node:lock:${process.pid}:${Date.now()}`;
    const t1 = await r.call('DBKV.LOCK', key, 'alice', 10000);
    assert.equal(typeof t1, 'number');
    assert.equal(await r.call('DBKV.LOCK', key, 'bob', 10000), null);
    const t2 = await r.call('DBKV.LOCK', key, 'alice', 10000);
    assert.ok(t2 > t1, `refresh token ${t2} not larger than ${t1}`);
    assert.equal(await r.call('DBKV.EXTENDLOCK', key, 'bob', 10000), -1);
    assert.equal(await r.call('DBKV.EXTENDLOCK', key, 'alice', 10000), 1);
    assert.equal(await r.call('DBKV.UNLOCK', key, 'bob'), -1);
    assert.equal(await r.call('DBKV.UNLOCK', key, 'alice'), 1);
    assert.equal(await r.call('DBKV.UNLOCK', key, 'alice'), 0);
    assert.equal(await r.call('DBKV.EXTENDLOCK', key, 'alice', 10000), 0);
    const t3 = await r.call('DBKV.LOCK', key, 'bob', 10000);
    assert.ok(t3 > t2, `bob's token ${t3} not larger than ${t2}`);
    assert.equal(await r.call('DBKV.UNLOCK', key, 'bob'), 1);

    await r.set('node:durable', 'yes');
    assert.equal(await r.call('DBKV.SYNC'), 'OK');
  });
});
