// AudioWorklet processors for agent-doctor's browser checks.
// - doctor-recorder: hands the microphone to the page in blocks stamped with their first
//   frame, and counts the frames the graph delivers (the real rate, not the declared one).
// - doctor-player: plays queued PCM chunks the way a voice-agent app plays its replies,
//   says at which frame each chunk started, and counts the frames it rendered.

const BLOCK = 4096;
const COUNT_EVERY = 2048;

class Recorder extends AudioWorkletProcessor {
  constructor() {
    super();
    this.block = new Float32Array(BLOCK);
    this.fill = 0;
    this.blockFrame = 0;
    this.frames = 0;
    this.sinceCount = 0;
    this.port.postMessage({ type: 'hello', sampleRate });
  }

  process(inputs, outputs) {
    const channel = inputs[0] && inputs[0][0];
    if (outputs[0] && outputs[0][0]) outputs[0][0].fill(0);
    if (!channel) return true; // nothing connected: no frames delivered
    for (let i = 0; i < channel.length; i += 1) {
      if (this.fill === 0) this.blockFrame = currentFrame + i;
      this.block[this.fill] = channel[i];
      this.fill += 1;
      if (this.fill === BLOCK) {
        this.port.postMessage({ type: 'audio', frame: this.blockFrame, samples: this.block });
        this.block = new Float32Array(BLOCK);
        this.fill = 0;
      }
    }
    this.frames += channel.length;
    this.sinceCount += channel.length;
    if (this.sinceCount >= COUNT_EVERY) {
      this.sinceCount = 0;
      this.port.postMessage({ type: 'count', frames: this.frames });
    }
    return true;
  }
}

class Player extends AudioWorkletProcessor {
  constructor() {
    super();
    this.queue = [];
    this.current = null;
    this.pos = 0;
    this.frames = 0;
    this.sinceCount = 0;
    this.port.onmessage = (event) => {
      this.queue.push({ id: event.data.id, samples: event.data.samples });
    };
  }

  process(inputs, outputs) {
    const out = outputs[0][0];
    for (let i = 0; i < out.length; i += 1) {
      if (!this.current && this.queue.length) {
        this.current = this.queue.shift();
        this.pos = 0;
        this.port.postMessage({ type: 'start', id: this.current.id, frame: currentFrame + i });
      }
      if (this.current) {
        out[i] = this.current.samples[this.pos];
        this.pos += 1;
        if (this.pos >= this.current.samples.length) {
          this.port.postMessage({ type: 'end', id: this.current.id, frame: currentFrame + i + 1 });
          this.current = null;
        }
      } else {
        out[i] = 0;
      }
    }
    this.frames += out.length;
    this.sinceCount += out.length;
    if (this.sinceCount >= COUNT_EVERY) {
      this.sinceCount = 0;
      this.port.postMessage({ type: 'count', frames: this.frames });
    }
    return true;
  }
}

registerProcessor('doctor-recorder', Recorder);
registerProcessor('doctor-player', Player);
