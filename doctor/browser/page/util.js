// Small helpers shared by the page's modules.

export function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// A promise raced against a deadline: `fallback` when it does not settle in time
// (resume() and outputLatency may never settle; nothing here may hang the page).
export function withTimeout(promise, ms, fallback) {
  let timer;
  const deadline = new Promise((resolve) => {
    timer = setTimeout(() => resolve(fallback), ms);
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}

// What a thrown error tells us: its name is the evidence, the message varies by engine.
export function errorInfo(error) {
  if (!error) return null;
  const out = { name: String(error.name || 'Error'), message: String(error.message || error) };
  if (error.constraint) out.constraint = String(error.constraint);
  return out;
}

export function roundTo(value, digits) {
  if (typeof value !== 'number' || !Number.isFinite(value)) return null;
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

export function dbfs(power) {
  return power > 0 ? roundTo(10 * Math.log10(power), 1) : null;
}

// Float samples as base64 of little-endian int16 (what the CLI's echo core reads).
export function pcm16Base64(samples) {
  const bytes = new Uint8Array(samples.length * 2);
  const view = new DataView(bytes.buffer);
  for (let i = 0; i < samples.length; i += 1) {
    const s = Math.max(-1, Math.min(1, samples[i]));
    view.setInt16(i * 2, Math.round(s * 32767), true);
  }
  let text = '';
  const step = 0x8000;
  for (let i = 0; i < bytes.length; i += step) {
    text += String.fromCharCode.apply(null, bytes.subarray(i, i + step));
  }
  return btoa(text);
}
