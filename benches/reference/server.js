// The voice webhook of ringrelay, as a Node service would usually write it
// (express, the official twilio helper, node-redis), for scripts/bench to
// measure beside ringrelay on the same Redis: it does the same work for a
// new forwarded call, in 3 round trips.
//
//   1. check the X-Twilio-Signature (twilio.validateRequest);
//   2. read the subscriber forwarding to the number called (HGET);
//   3. claim the newest session of that caller waiting for its forwarded
//      call (ZPOPMAX), or make one when none waits;
//   4. write the session, the call's key, the subscriber's history (one
//      MULTI);
//   5. answer the same TwiML: a Dial of the first destination, its action
//      and whisper URLs pointing back with the session.
//
// Subscribers are `<prefix>:fw` fields (JSON, by forwarding number), written
// by scripts/bench. Environment: PORT, PUBLIC_BASE_URL, TWILIO_AUTH_TOKEN,
// REDIS_URL, REDIS_KEY_PREFIX (default `ref`).
'use strict';

const crypto = require('node:crypto');
const express = require('express');
const twilio = require('twilio');
const { createClient } = require('redis');

const port = Number(process.env.PORT);
const base = process.env.PUBLIC_BASE_URL;
const authToken = process.env.TWILIO_AUTH_TOKEN;
const prefix = process.env.REDIS_KEY_PREFIX || 'ref';
const SESSION_TTL_SECS = 150;

const redis = createClient({ url: process.env.REDIS_URL });
redis.on('error', (err) => console.error('redis:', err.message));

const app = express();
app.disable('x-powered-by');
app.use(express.urlencoded({ extended: false }));

app.get('/healthz', (req, res) => res.send('ok'));

app.post('/twilio/voice', async (req, res, next) => {
  try {
    const signature = req.get('X-Twilio-Signature') || '';
    if (!twilio.validateRequest(authToken, signature, base + req.originalUrl, req.body)) {
      return res.status(403).send('bad signature');
    }
    const { CallSid: callSid, From: from, To: to } = req.body;
    const twiml = new twilio.twiml.VoiceResponse();
    const raw = await redis.hGet(`${prefix}:fw`, to);
    if (!raw) {
      twiml.say('The number you called is not available.');
      twiml.hangup();
      return res.type('text/xml').send(twiml.toString());
    }
    const subscriber = JSON.parse(raw);
    const now = Date.now();
    const waiting = await redis.zPopMax(`${prefix}:wait:${subscriber.number}:${from}`);
    const id = waiting ? waiting.value : `ses_${crypto.randomBytes(16).toString('base64url')}`;
    const session = {
      id,
      subscriber: subscriber.number,
      caller: from,
      state: 'forwarded',
      call_sid: callSid,
      forwarded_at: now,
    };
    await redis
      .multi()
      .set(`${prefix}:ses:${id}`, JSON.stringify(session), { EX: SESSION_TTL_SECS })
      .set(`${prefix}:call:${callSid}`, id, { EX: SESSION_TTL_SECS })
      .zAdd(`${prefix}:hist:${subscriber.number}`, { score: now, value: id })
      .exec();
    const destination = subscriber.destinations[0];
    const query = new URLSearchParams({
      subscriber: subscriber.number,
      session: id,
      step: '0',
      round: '0',
      caller: from,
    });
    const dial = twiml.dial({
      action: `${base}/twilio/dial-status?${query}`,
      method: 'POST',
      timeout: 20,
      answerOnBridge: true,
      callerId: from,
    });
    query.set('destination', destination.id);
    dial.number({ url: `${base}/twilio/screen?${query}`, method: 'POST' }, destination.address);
    res.type('text/xml').send(twiml.toString());
  } catch (err) {
    next(err);
  }
});

redis.connect().then(() => {
  app.listen(port, '127.0.0.1', () => console.log(`reference listening on ${port}`));
});
