// Drives a live Valbox server with Val Town's own client. Reads
// VAL_TOWN_BASE_URL and VAL_TOWN_API_KEY like any user of the client, and
// VAL_ID (a val of the token's user that has a deployed version).
// Exits non-zero, naming the step, on the first mismatch.
import ValTown from '@valtown/sdk';
import assert from 'node:assert/strict';

const client = new ValTown();
const valId = process.env.VAL_ID;

async function step(name, body) {
  try {
    await body();
    console.log(`ok: ${name}`);
  } catch (err) {
    console.error(`FAILED: ${name}: ${err?.stack ?? err}`);
    process.exit(1);
  }
}

await step('me', async () => {
  const me = await client.me.profile.retrieve();
  assert.equal(me.username, 'alice');
  assert.equal(me.type, 'user');
});

await step('blobs: store, list, get, delete', async () => {
  await client.blobs.store('sdk/note.txt', 'hello from the official client');
  const listed = await client.blobs.list({ prefix: 'sdk/' });
  assert.equal(listed.length, 1);
  assert.equal(listed[0].key, 'sdk/note.txt');
  assert.equal(listed[0].size, 30);
  const got = await client.blobs.get('sdk/note.txt');
  assert.equal(await got.text(), 'hello from the official client');
  await client.blobs.delete('sdk/note.txt');
  assert.deepEqual(await client.blobs.list({ prefix: 'sdk/' }), []);
});

await step('sqlite: execute and batch', async () => {
  await client.sqlite.execute({ statement: 'CREATE TABLE IF NOT EXISTS sdk (name TEXT, n INTEGER)' });
  const inserted = await client.sqlite.execute({ statement: { sql: 'INSERT INTO sdk VALUES (?, ?)', args: ['one', 1] } });
  assert.equal(inserted.rowsAffected, 1);
  await client.sqlite.execute({ statement: { sql: 'INSERT INTO sdk VALUES (:name, :n)', args: { name: 'two', n: 2 } } });
  const [rows, count] = await client.sqlite.batch({
    statements: ['SELECT name, n FROM sdk ORDER BY n', { sql: 'SELECT count(*) AS c FROM sdk', args: [] }],
    mode: 'read',
  });
  assert.deepEqual(rows.columns, ['name', 'n']);
  assert.deepEqual(rows.rows, [['one', 1], ['two', 2]]);
  assert.deepEqual(count.rows, [[2]]);
});

await step('emails: send', async () => {
  const sent = await client.emails.send({ subject: 'From the official client', text: 'hi' });
  assert.match(sent.message, /queued/);
});

await step('vals: list (paged) and retrieve', async () => {
  const names = [];
  for await (const val of client.vals.list({ limit: 1, offset: 0 })) names.push(val.name);
  assert.ok(names.length >= 2, `expected several public vals, got ${names}`);
  assert.equal(new Set(names).size, names.length, 'pages repeated a val');
  const val = await client.vals.retrieve(valId);
  assert.equal(val.id, valId);
  assert.equal(val.author.username, 'alice');
  const mine = [];
  for await (const v of client.me.vals.list({ limit: 1, offset: 0 })) mine.push(v.name);
  assert.deepEqual(mine.sort(), [...names].sort());
});

await step('environment variables', async () => {
  const env = client.vals.environmentVariables;
  const created = await env.create(valId, { key: 'SDK_SECRET', value: 'shh', description: 'from the client' });
  assert.equal(created.key, 'SDK_SECRET');
  assert.equal(created.value, undefined);
  await env.update(valId, 'SDK_SECRET', { value: 'shh2' });
  const keys = [];
  for await (const v of env.list(valId, { limit: 10, offset: 0 })) keys.push(v.key);
  assert.deepEqual(keys, ['SDK_SECRET']);
  await env.delete(valId, 'SDK_SECRET');
});

await step('telemetry logs', async () => {
  const logs = await client.telemetry.logs.list({ limit: 5, direction: 'desc' });
  assert.ok(Array.isArray(logs.data));
  assert.ok(logs.data.length >= 1, 'the test made a call before running the client');
  assert.ok(logs.data[0].attributes);
});

console.log('all checks passed');
