// The WebSocket to the Voice Agent API as an app opens it: the temporary token in the URL,
// session.update, wait for session.ready, then session.end. Only the event timeline comes
// back; the URL (with its token) is never posted.
import { errorInfo } from './util.js';

const NO_CLOSE_MS = 3000; // WebKit fires `error` without `close` on a blocked port

export function wssCheck(wsUrl, token, timeoutMs) {
  const t0 = performance.now();
  const events = [];
  const out = { events };
  const note = (type, extra) => events.push({ t_ms: Math.round(performance.now() - t0), type, ...extra });
  let ws;
  try {
    const url = new URL(wsUrl);
    url.searchParams.set('token', token);
    ws = new WebSocket(url.href);
  } catch (error) {
    out.constructor_error = errorInfo(error);
    return Promise.resolve(out);
  }
  return new Promise((resolve) => {
    let done = false;
    let noClose = null;
    const finish = (why) => {
      if (done) return;
      done = true;
      out.ended_by = why;
      clearTimeout(deadline);
      clearTimeout(noClose);
      if (why !== 'close') {
        try {
          ws.close();
        } catch {
          // already closing
        }
      }
      resolve(out);
    };
    const deadline = setTimeout(() => finish('timeout'), timeoutMs);
    ws.onopen = () => {
      note('open');
      ws.send(JSON.stringify({ type: 'session.update', session: {} }));
    };
    ws.onmessage = (message) => {
      let data = {};
      try {
        data = JSON.parse(message.data);
      } catch {
        note('message', { message_type: 'not_json' });
        return;
      }
      const extra = { message_type: String(data.type) };
      if (data.type === 'session.error') {
        extra.error_code = String(data.code ?? data.error?.code ?? '');
        extra.error_message = String(data.message ?? data.error?.message ?? '').slice(0, 200);
      }
      if (data.type === 'session.ready') {
        extra.session_id = String(data.session_id ?? data.session?.id ?? '');
        ws.send(JSON.stringify({ type: 'session.end' }));
      }
      note('message', extra);
    };
    ws.onerror = () => {
      note('error');
      noClose = setTimeout(() => finish('error_without_close'), NO_CLOSE_MS);
    };
    ws.onclose = (event) => {
      note('close', { code: event.code, reason: event.reason.slice(0, 200), was_clean: event.wasClean });
      finish('close');
    };
  });
}
