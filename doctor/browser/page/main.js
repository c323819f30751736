// agent-doctor's browser page: one click runs every check, the raw facts go to the CLI
// (which judges them and answers with the verdicts), and a download is the fallback.
import { buildGraph, deliveredRates, echoRun, measure, openContext } from './audio.js';
import { errorInfo, sleep, withTimeout } from './util.js';
import { wssCheck } from './wss.js';

const API_RATE = 24000;
const CONSTRAINTS = { echoCancellation: true, noiseSuppression: false, autoGainControl: true };
const MEASURE_S = 2;
const WARMUP_S = [1.5, 1.0]; // the echo canceller converges in 1-3 s; the second run reuses it
const AFTER_S = 0.5;
const WORKLET = new URL('./worklet.js', import.meta.url).href;
const STEPS = {
  'browser-env': 'Secure context and audio APIs',
  'browser-permission': 'Microphone permission',
  'browser-microphone': 'Microphone opens and delivers sound',
  'browser-processing': 'Echo cancellation and processing applied',
  'browser-sample-rate': 'Real sample rates',
  'browser-autoplay': 'Audio starts',
  'browser-output': 'Playback path',
  'browser-echo': 'Echo test (stay quiet)',
  'browser-wss': 'WebSocket to the Voice Agent API',
};

const nonce = new URLSearchParams(location.hash.slice(1)).get('nonce') || '';
const $ = (id) => document.getElementById(id);
const facts = { version: 1 };

// Tells the CLI where the page is, so a page that never finishes can be located.
function progress(step) {
  fetch('/progress', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', 'X-Doctor-Nonce': nonce },
    body: JSON.stringify({ step }),
    keepalive: true,
  }).catch(() => null);
}

function show(id, state, text) {
  progress(`${id}: ${text}`);
  let li = document.querySelector(`[data-check="${id}"]`);
  if (!li) {
    li = document.createElement('li');
    li.dataset.check = id;
    $('checks').append(li);
  }
  li.className = state;
  li.textContent = `${STEPS[id] || id}: ${text}`;
}

function status(text) {
  $('status').textContent = text;
}

async function api(path, body) {
  const response = await fetch(path, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', 'X-Doctor-Nonce': nonce },
    body: JSON.stringify(body ?? {}),
    cache: 'no-store',
  });
  if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
  return response;
}

function environment() {
  const md = navigator.mediaDevices;
  const probeCtx = typeof AudioContext === 'function' ? AudioContext.prototype : null;
  return {
    secure_context: window.isSecureContext === true,
    origin: location.origin,
    api_present: {
      mediaDevices: Boolean(md),
      getUserMedia: Boolean(md && md.getUserMedia),
      AudioContext: typeof AudioContext === 'function',
      audioWorklet: Boolean(probeCtx && 'audioWorklet' in probeCtx),
      AudioWorkletNode: typeof AudioWorkletNode === 'function',
      permissions: Boolean(navigator.permissions && navigator.permissions.query),
      WebSocket: typeof WebSocket === 'function',
    },
  };
}

async function permissionState() {
  if (!navigator.permissions || !navigator.permissions.query) return { supported: false };
  try {
    const s = await withTimeout(navigator.permissions.query({ name: 'microphone' }), 2000, null);
    return s ? { supported: true, state: s.state } : { supported: true, state: null };
  } catch (error) {
    return { supported: false, error: errorInfo(error) };
  }
}

async function devices() {
  try {
    const list = await navigator.mediaDevices.enumerateDevices();
    return {
      inputs: list.filter((d) => d.kind === 'audioinput').length,
      outputs: list.filter((d) => d.kind === 'audiooutput').length,
    };
  } catch (error) {
    return { error: errorInfo(error) };
  }
}

async function openMicrophone() {
  const before = await permissionState();
  facts.devices = await devices();
  const t0 = performance.now();
  let stream = null;
  try {
    stream = await navigator.mediaDevices.getUserMedia({ audio: CONSTRAINTS });
    facts.gum = { ok: true, ms: Math.round(performance.now() - t0) };
  } catch (error) {
    facts.gum = { ok: false, ms: Math.round(performance.now() - t0), error: errorInfo(error) };
  }
  const after = await permissionState();
  facts.permission = { query_supported: before.supported, state_before: before.state ?? null, state_after: after.state ?? null };
  if (!stream) return null;
  facts.devices = await devices(); // labels and counts are complete only after a grant
  const track = stream.getAudioTracks()[0];
  facts.gum.label = track.label;
  facts.processing = {
    requested: CONSTRAINTS,
    settings: track.getSettings ? track.getSettings() : null,
    capabilities: track.getCapabilities ? track.getCapabilities() : null,
    supported: navigator.mediaDevices.getSupportedConstraints(),
  };
  if (facts.processing.settings) delete facts.processing.settings.deviceId;
  if (facts.processing.settings) delete facts.processing.settings.groupId;
  if (facts.processing.capabilities) delete facts.processing.capabilities.deviceId;
  if (facts.processing.capabilities) delete facts.processing.capabilities.groupId;
  return stream;
}

async function probeFor(rate) {
  const response = await api(`/probe?rate=${rate}`);
  return new Float32Array(await response.arrayBuffer());
}

async function audioChecks(stream) {
  const track = stream.getAudioTracks()[0];
  facts.contexts = [];
  facts.echo = [];
  // The vendor's path (a 24 kHz context) first, then the browser's own rate.
  for (const [i, rate] of [API_RATE, null].entries()) {
    const label = rate ? 'api_rate' : 'default_rate';
    show('browser-sample-rate', 'running', rate ? 'a 24 kHz AudioContext…' : 'the default-rate AudioContext…');
    const { ctx, info } = await openContext(rate, WORKLET);
    info.label = label;
    show('browser-sample-rate', 'running', `${label.replace('_', ' ')} context: ${info.state_after}`);
    facts.contexts.push(info);
    if (!ctx || info.error) continue;
    const graph = buildGraph(ctx, stream, info);
    if (!facts.measure && graph.micConnected) {
      show('browser-microphone', 'running', `listening for ${MEASURE_S} s…`);
      const note = (text) => show('browser-microphone', 'running', text);
      facts.measure = { label, ...(await measure(graph, track, MEASURE_S, note)) };
      show('browser-microphone', 'done', 'measured');
    } else if (i === 0 || !facts.measure) {
      await sleep(300); // enough frames for the worklet's rate report
      info.worklet_rate_hz = graph.rec.workletRate ?? graph.play.workletRate;
    }
    if (graph.micConnected) {
      show('browser-echo', 'running', `playing test sounds through the ${label.replace('_', ' ')} context…`);
      const probe = await probeFor(ctx.sampleRate);
      const run = await echoRun(graph, probe, WARMUP_S[i], AFTER_S);
      facts.echo.push({ label, requested_rate_hz: rate, ...run });
    }
    if (facts.measure && facts.measure.label === label) {
      Object.assign(facts.measure, deliveredRates(graph, facts.measure.since));
      delete facts.measure.since;
    }
    await withTimeout(ctx.close().catch(() => null), 1000, null);
  }
  show('browser-echo', 'done', 'recorded');
}

async function run() {
  $('start').disabled = true;
  facts.description = $('describe').value.slice(0, 2000);
  facts.ua = navigator.userAgent;
  facts.platform = navigator.userAgentData?.platform || navigator.platform || '';
  facts.started_at = new Date().toISOString();
  show('browser-env', 'running', 'checking…');
  facts.env = environment();
  show('browser-env', 'done', facts.env.secure_context ? 'secure context' : 'NOT a secure context');
  let wss = Promise.resolve(null);
  try {
    const session = await (await api('/session')).json();
    facts.session = { has_token: Boolean(session.token), token_error: session.token_error ?? null };
    if (session.token && typeof WebSocket === 'function') {
      show('browser-wss', 'running', 'connecting…');
      wss = wssCheck(session.ws_url, session.token, session.timeout_ms).then((r) => {
        show('browser-wss', 'done', 'finished');
        return r;
      });
    }
  } catch (error) {
    facts.session = { has_token: false, token_error: String(error.message || error) };
  }
  if (facts.env.api_present.getUserMedia) {
    show('browser-permission', 'running', 'asking for the microphone…');
    const stream = await openMicrophone();
    show('browser-permission', 'done', facts.gum.ok ? 'granted' : facts.gum.error.name);
    if (stream) {
      await audioChecks(stream);
      stream.getTracks().forEach((t) => t.stop());
    }
  }
  facts.wss = await wss;
  await report();
}

async function report() {
  status('Sending the results to agent-doctor…');
  try {
    const answer = await (await api('/result', facts)).json();
    $('checks').textContent = '';
    for (const c of answer.checks) show(c.id, c.status, `${c.status.toUpperCase()}: ${c.summary}`);
    status('Done: the full report is in your terminal. You can close this tab.');
    window.__doctorDone = answer;
  } catch (error) {
    status(`Could not reach agent-doctor (${error.message}): use "Download report" and attach the file.`);
    $('download').hidden = false;
    window.__doctorDone = { error: String(error.message || error) };
  }
}

function download() {
  const copy = { ...facts, echo: (facts.echo || []).map(({ recorded_pcm16_b64: _, ...rest }) => rest) };
  const blob = new Blob([JSON.stringify(copy, null, 2)], { type: 'application/json' });
  const a = document.createElement('a');
  a.href = URL.createObjectURL(blob);
  a.download = `agent-doctor-browser-${Date.now()}.json`;
  a.click();
}

$('start').addEventListener('click', () => {
  run().catch(async (error) => {
    facts.page_error = errorInfo(error);
    await report();
  });
});
$('download').addEventListener('click', download);
$('start').disabled = false;
window.__doctorReady = true;
