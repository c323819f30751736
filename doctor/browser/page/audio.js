// The page's audio path, built the way a voice-agent app builds it: one AudioContext, the
// microphone into an AudioWorklet recorder, replies played by an AudioWorklet player.
import { dbfs, errorInfo, pcm16Base64, roundTo, sleep, withTimeout } from './util.js';

// resume() normally settles within tens of ms; a cold audio server can take seconds
// (Firefox ESR with a fresh PulseAudio took over 1.5 s in CI), while a blocked context
// never settles. So a slow resume is noted at 1.5 s and only given up on at 8 s.
const RESUME_SLOW_MS = 1500;
const RESUME_TIMEOUT_MS = 8000;
const MODULE_TIMEOUT_MS = 5000;
const CLIP_LEVEL = 0.999;
const CLIP_RUN = 6; // more than 6 full-scale samples in a row: clipping (testrtc's rule)
// Firefox's outputLatency getter is synchronous and blocked the whole page for good under
// load (ESR 153, PulseAudio, about 1 run in 4); a synchronous call cannot be raced against
// a timeout, so Firefox's is not read (the echo test's round trip still measures latency).
const OUTPUT_LATENCY_BLOCKS = /Firefox\//.test(navigator.userAgent);

// Collects what a worklet node posts: audio blocks, frame counts, player start/end marks.
class Tap {
  constructor(node) {
    this.blocks = [];
    this.counts = [];
    this.marks = {};
    this.workletRate = null;
    this.waiters = [];
    node.port.onmessage = (event) => this.take(event.data);
  }

  take(data) {
    if (data.type === 'hello') this.workletRate = data.sampleRate;
    else if (data.type === 'audio') this.blocks.push(data);
    else if (data.type === 'count') this.counts.push({ t: performance.now(), frames: data.frames });
    else if (data.type === 'start' || data.type === 'end') this.marks[`${data.type}:${data.id}`] = data.frame;
    this.waiters = this.waiters.filter((w) => !w());
  }

  // Resolves with true when `ready()` holds, false at the deadline.
  until(ready, ms) {
    if (ready()) return Promise.resolve(true);
    return withTimeout(
      new Promise((resolve) => this.waiters.push(() => (ready() ? (resolve(true), true) : false))),
      ms,
      false,
    );
  }

  lastFrame() {
    const b = this.blocks[this.blocks.length - 1];
    return b ? b.frame + b.samples.length : 0;
  }

  // Samples [from, to) in graph frames; zeros where nothing was delivered.
  slice(from, to) {
    const out = new Float32Array(Math.max(0, to - from));
    for (const b of this.blocks) {
      const start = Math.max(from, b.frame);
      const end = Math.min(to, b.frame + b.samples.length);
      for (let f = start; f < end; f += 1) out[f - from] = b.samples[f - b.frame];
    }
    return out;
  }

  // Frames per wall-clock second since `since` (performance.now()): the median slope of
  // point pairs at least 1 s apart (Theil-Sen), so a burst of blocks that some engines
  // deliver at start-up, or a late message, does not move it; the first 0.5 s is left out.
  deliveredRate(since) {
    const pts = this.counts.filter((c) => c.t >= since + 500);
    const slopes = [];
    for (let i = 0; i < pts.length; i += 1) {
      for (let j = i + 1; j < pts.length; j += 1) {
        const dt = pts[j].t - pts[i].t;
        if (dt >= 1000) slopes.push(((pts[j].frames - pts[i].frames) / dt) * 1000);
      }
    }
    if (!slopes.length) return null;
    slopes.sort((x, y) => x - y);
    return roundTo(slopes[Math.floor(slopes.length / 2)], 0);
  }
}

// A context at `rate` (null: the browser's default), resumed with a deadline, with the
// recorder and player worklets loaded. Never throws: failures are in `info`.
export async function openContext(rate, workletUrl) {
  const info = { requested_rate_hz: rate };
  let ctx;
  try {
    ctx = rate ? new AudioContext({ sampleRate: rate }) : new AudioContext();
  } catch (error) {
    info.error = errorInfo(error);
    return { info };
  }
  info.context_rate_hz = ctx.sampleRate;
  info.state_initial = ctx.state;
  const t0 = performance.now();
  const resuming = ctx.resume().then(
    () => true,
    (error) => {
      info.resume_error = errorInfo(error);
      return false;
    },
  );
  let resumed = await withTimeout(resuming, RESUME_SLOW_MS, null);
  if (resumed === null) {
    info.resume_slow_ms = RESUME_SLOW_MS;
    resumed = await withTimeout(resuming, RESUME_TIMEOUT_MS - RESUME_SLOW_MS, false);
  }
  info.resume_ms = resumed ? Math.round(performance.now() - t0) : null;
  info.resume_timeout_ms = RESUME_TIMEOUT_MS;
  info.state_after = ctx.state;
  info.base_latency_ms = roundTo((ctx.baseLatency ?? NaN) * 1000, 1);
  if (!ctx.audioWorklet) {
    info.error = { name: 'NoAudioWorklet', message: 'AudioContext.audioWorklet is missing' };
    return { ctx, info };
  }
  const loaded = await withTimeout(
    ctx.audioWorklet.addModule(workletUrl).then(
      () => true,
      (error) => {
        info.error = errorInfo(error);
        return false;
      },
    ),
    MODULE_TIMEOUT_MS,
    false,
  );
  if (!loaded && !info.error) info.error = { name: 'TimeoutError', message: 'addModule did not settle' };
  return { ctx, info };
}

// Microphone -> recorder, player -> speakers. A microphone that cannot be connected to
// this context (Firefox, mixed rates) is recorded in `info.mic_connect_error`.
export function buildGraph(ctx, stream, info) {
  const recorder = new AudioWorkletNode(ctx, 'doctor-recorder', {
    numberOfInputs: 1,
    numberOfOutputs: 1,
    channelCount: 1,
    channelCountMode: 'explicit',
  });
  const mute = ctx.createGain();
  mute.gain.value = 0;
  recorder.connect(mute).connect(ctx.destination);
  const player = new AudioWorkletNode(ctx, 'doctor-player', {
    numberOfInputs: 0,
    numberOfOutputs: 1,
    outputChannelCount: [1],
  });
  player.connect(ctx.destination);
  const graph = {
    ctx,
    rec: new Tap(recorder),
    play: new Tap(player),
    playNode: player,
    micConnected: false,
  };
  try {
    ctx.createMediaStreamSource(stream).connect(recorder);
    graph.micConnected = true;
  } catch (error) {
    info.mic_connect_error = errorInfo(error);
  }
  return graph;
}

function levels(samples) {
  let power = 0;
  let peak = 0;
  let zeros = 0;
  let run = 0;
  let clipRuns = 0;
  for (const s of samples) {
    const a = Math.abs(s);
    power += s * s;
    if (a > peak) peak = a;
    if (s === 0) zeros += 1;
    if (a >= CLIP_LEVEL) {
      run += 1;
      if (run === CLIP_RUN + 1) clipRuns += 1;
    } else {
      run = 0;
    }
  }
  const n = samples.length || 1;
  return {
    samples: samples.length,
    level_rms_dbfs: dbfs(power / n),
    level_peak_dbfs: dbfs(peak * peak),
    zero_fraction: roundTo(zeros / n, 4),
    clip_runs: clipRuns,
  };
}

// `seconds` of microphone with nothing played: level, delivered rates, output latency.
export async function measure(graph, track, seconds, note = () => {}) {
  // track.stats latency is inflated at first (browser.md §2.7): average from here on
  if (track.stats && typeof track.stats.resetLatency === 'function') track.stats.resetLatency();
  const since = performance.now();
  const from = graph.rec.lastFrame();
  await sleep(seconds * 1000);
  note('reading the output latency');
  const to = graph.rec.lastFrame();
  const out = {
    context_rate_hz: graph.ctx.sampleRate,
    worklet_rate_hz: graph.rec.workletRate ?? graph.play.workletRate,
    mic_connected: graph.micConnected,
    delivered_input_hz: graph.micConnected ? graph.rec.deliveredRate(since) : null,
    delivered_output_hz: graph.play.deliveredRate(since),
    since,
    ...levels(graph.rec.slice(from, to)),
    track_muted: track.muted,
    track_state: track.readyState,
    output_latency_ms: OUTPUT_LATENCY_BLOCKS ? null : roundTo((graph.ctx.outputLatency ?? NaN) * 1000, 1),
    output_latency_unread: OUTPUT_LATENCY_BLOCKS ? 'Firefox: the outputLatency getter can block the page' : null,
    base_latency_ms: roundTo((graph.ctx.baseLatency ?? NaN) * 1000, 1),
  };
  const stats = graph.ctx.playbackStats;
  if (stats) {
    out.playback_stats = {
      underrun_events: stats.underrunEvents ?? null,
      underrun_ms: roundTo((stats.underrunDuration ?? NaN) * 1000, 1),
      average_latency_ms: roundTo((stats.averageLatency ?? NaN) * 1000, 1),
    };
  }
  if (track.stats && typeof track.stats.latency === 'number') {
    out.track_stats = {
      latency_ms: roundTo(track.stats.latency * 1000, 1),
      average_latency_ms: roundTo((track.stats.averageLatency ?? NaN) * 1000, 1),
      maximum_latency_ms: roundTo((track.stats.maximumLatency ?? NaN) * 1000, 1),
      dropped_frames: (track.stats.totalFrames ?? 0) - (track.stats.deliveredFrames ?? 0),
    };
  }
  return out;
}

// Delivered frames per second over the context's whole life so far (longer is steadier).
export function deliveredRates(graph, since) {
  return {
    delivered_input_hz: graph.micConnected ? graph.rec.deliveredRate(since) : null,
    delivered_output_hz: graph.play.deliveredRate(since),
    delivered_over_s: roundTo((performance.now() - since) / 1000, 1),
  };
}

// Deterministic noise at about -26 dBFS RMS: lets the echo canceller converge first.
function warmupNoise(rate, seconds) {
  const out = new Float32Array(Math.round(rate * seconds));
  let seed = 12345;
  for (let i = 0; i < out.length; i += 1) {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    out[i] = (seed / 2147483648 - 0.5) * 0.17;
  }
  return out;
}

// Plays a warm-up, then the CLI's probe, through the player; returns the microphone from
// the probe's first frame on, for the CLI's echo core (one echo method, in Python).
export async function echoRun(graph, probe, warmupS, afterS) {
  const rate = graph.ctx.sampleRate;
  const tailFrames = Math.round(afterS * rate);
  const result = { context_rate_hz: rate, warmup_s: warmupS };
  graph.playNode.port.postMessage({ id: 'warmup', samples: warmupNoise(rate, warmupS) });
  graph.playNode.port.postMessage({ id: 'probe', samples: probe });
  const budget = (warmupS + probe.length / rate + afterS) * 1000 + 4000;
  const started = await graph.play.until(() => 'start:probe' in graph.play.marks, budget);
  if (!started) {
    result.error = { name: 'PlaybackStalled', message: 'the probe never started playing' };
    return result;
  }
  const start = graph.play.marks['start:probe'];
  const end = start + probe.length + tailFrames;
  const recorded = await graph.rec.until(() => graph.rec.lastFrame() >= end, budget);
  if (!recorded) {
    result.error = { name: 'CaptureStalled', message: 'the microphone stopped delivering' };
    return result;
  }
  result.recorded_pcm16_b64 = pcm16Base64(graph.rec.slice(start, end));
  result.recorded_rate_hz = rate;
  result.probe_frames = probe.length;
  return result;
}
