// The learner page: record (MediaRecorder) or choose audio, send it with the text to /v1/assess, colour the result.
// Recordings are converted to 16 kHz mono WAV in the browser: MediaRecorder gives WebM/Ogg Opus, which the
// server's decoder (libsndfile) does not read in every build.
// Colours and the legend come from the server's band table (GET /v1/info, "bands"; rationalizer/bands.py), the
// same table the rationale's band words come from: the page has no thresholds of its own.
"use strict";

const TARGET_RATE = 16000;

const $ = (id) => document.getElementById(id);
let recorder = null;
let recordedWav = null;
let bandsPromise = null;

loadBands().catch(() => {});  // at page load, for the legend; submit() tries again if this failed

$("record").addEventListener("click", () => (recorder ? stopRecording() : startRecording()));
$("audio-file").addEventListener("change", () => { recordedWav = null; $("playback").hidden = true; });
$("assess-form").addEventListener("submit", (event) => { event.preventDefault(); submit(); });

async function startRecording() {
  if (!navigator.mediaDevices || !window.MediaRecorder) {
    return showMessage("This browser cannot record; upload a file instead.", true);
  }
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({ audio: true });
  } catch (err) {
    return showMessage(`No microphone access (${err.message}); upload a file instead.`, true);
  }
  const chunks = [];
  recorder = new MediaRecorder(stream);
  recorder.ondataavailable = (e) => chunks.push(e.data);
  recorder.onstop = async () => {
    stream.getTracks().forEach((t) => t.stop());
    try {
      recordedWav = await toWav(new Blob(chunks, { type: recorder.mimeType }));
      $("playback").src = URL.createObjectURL(recordedWav);
      $("playback").hidden = false;
      $("audio-file").value = "";
      $("record-status").textContent = "recorded";
    } catch (err) {
      showMessage(`Could not read the recording: ${err.message}`, true);
    }
    recorder = null;
    $("record").textContent = "Record again";
    $("record").classList.remove("recording");
  };
  recorder.start();
  $("record").textContent = "Stop recording";
  $("record").classList.add("recording");
  $("record-status").textContent = "recording…";
}

function stopRecording() {
  recorder.stop();
}

async function toWav(blob) {
  const context = new AudioContext();
  const decoded = await context.decodeAudioData(await blob.arrayBuffer());
  context.close();
  const frames = Math.ceil(decoded.duration * TARGET_RATE);
  const offline = new OfflineAudioContext(1, frames, TARGET_RATE);  // mono: channels are mixed down
  const source = offline.createBufferSource();
  source.buffer = decoded;
  source.connect(offline.destination);
  source.start();
  const rendered = await offline.startRendering();
  return encodeWav(rendered.getChannelData(0), TARGET_RATE);
}

function encodeWav(samples, rate) {
  const view = new DataView(new ArrayBuffer(44 + samples.length * 2));
  const text = (offset, s) => [...s].forEach((c, i) => view.setUint8(offset + i, c.charCodeAt(0)));
  text(0, "RIFF"); view.setUint32(4, 36 + samples.length * 2, true); text(8, "WAVE");
  text(12, "fmt "); view.setUint32(16, 16, true); view.setUint16(20, 1, true); view.setUint16(22, 1, true);
  view.setUint32(24, rate, true); view.setUint32(28, rate * 2, true); view.setUint16(32, 2, true);
  view.setUint16(34, 16, true); text(36, "data"); view.setUint32(40, samples.length * 2, true);
  samples.forEach((x, i) => view.setInt16(44 + i * 2, Math.max(-1, Math.min(1, x)) * 32767, true));
  return new Blob([view], { type: "audio/wav" });
}

async function submit() {
  const text = $("text").value.trim();
  const file = $("audio-file").files[0];
  const audio = recordedWav || file;
  if (!text) return showMessage("Type the sentence you read.", true);
  if (!audio) return showMessage("Record yourself or choose a recording first.", true);
  const form = new FormData();
  form.append("text", text);
  form.append("audio", audio, recordedWav ? "recording.wav" : file.name);
  showMessage("Checking…", false);
  $("submit").disabled = true;
  try {
    const bands = await loadBands();
    const response = await fetch("/v1/assess", { method: "POST", body: form });
    const body = await response.json().catch(() => ({ error: `server answered ${response.status}` }));
    if (!response.ok) {
      const retry = response.headers.get("Retry-After");
      return showMessage(body.error + (retry ? ` (retry in ${retry} s)` : ""), true);
    }
    showMessage("", false);
    showResult(body, bands);
  } catch (err) {
    showMessage(`Could not reach the server: ${err.message}`, true);
  } finally {
    $("submit").disabled = false;
  }
}

function showMessage(text, isError) {
  $("message").textContent = text;
  $("message").className = isError ? "error" : "";
}

// The band table, fetched once: {granularity: {minimum, maximum, decimals, bands: [{name, lower, upper, colour,
// hex, background}, ...worst first]}}. A failed fetch is forgotten, so the next call tries again.
function loadBands() {
  if (!bandsPromise) {
    bandsPromise = fetchBands().catch((err) => { bandsPromise = null; throw err; });
  }
  return bandsPromise;
}

async function fetchBands() {
  const response = await fetch("/v1/info");
  if (!response.ok) throw new Error(`the band table: server answered ${response.status}`);
  const bands = (await response.json()).bands;
  showLegend(bands);
  return bands;
}

// The band of a score, as rationalizer.bands.band(): on the value rounded as shown; outside the scale, an end band.
function band(bands, value, granularity) {
  const scale = bands[granularity];
  const shown = Number(value.toFixed(scale.decimals));
  const last = scale.bands.length - 1;
  return scale.bands.find((b, i) => i === last || shown < b.upper);
}

function paint(node, b) {
  node.classList.add(b.name);
  node.style.backgroundColor = b.background;
  node.style.borderColor = b.hex;
  return node;
}

function showLegend(bands) {
  const legend = $("legend-bands");
  legend.replaceChildren();
  for (const [i, b] of bands.word.bands.entries()) {  // best first
    const phone = bands.phone.bands[i];
    const span = paint(element("span", "", b.name), b);
    span.title = `words and sentence ${b.lower}-${b.upper}, sounds ${phone.lower}-${phone.upper}`;
    legend.prepend(span, " ");
  }
}

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function showResult(result, bands) {
  const table = $("sentence-scores");
  table.replaceChildren();
  for (const [aspect, value] of Object.entries(result.sentence)) {
    const row = table.insertRow();
    row.insertCell().textContent = aspect;
    const cell = row.insertCell();
    cell.textContent = value.toFixed(1);
    paint(cell, band(bands, value, "sentence"));
  }
  const warnings = $("warnings");
  warnings.replaceChildren();
  const said = [...(result.verification ? result.verification.warnings : []), ...(result.audio_warnings || [])];
  for (const text of said) warnings.append(element("li", "", text));
  const rationale = $("rationale");
  rationale.textContent = result.rationale ? result.rationale.text : "";
  rationale.title = result.rationale ? `written by: ${result.rationale.source}` : "";
  const words = $("words");
  words.replaceChildren();
  for (const word of result.words) words.append(wordCard(word, bands));
  if (result.alignment_fallback) {
    words.append(element("p", "", "Note: the sounds could not be aligned exactly; their timing is estimated."));
  }
  $("result").hidden = false;
}

function wordCard(word, bands) {
  const card = paint(element("div", "word"), band(bands, word.accuracy, "word"));
  card.append(element("div", "text", word.text));
  card.append(element("div", "score", `accuracy ${word.accuracy.toFixed(1)} · stress ${word.stress.toFixed(1)}`));
  const phones = element("div", "phones");
  for (const p of word.phones) {
    // the server flags a phone mispronounced below the "poor" edge of the same table, so the flag and colour agree
    const phone = paint(element("span", "phone", p.phone.replace(/\d$/, "")), band(bands, p.score, "phone"));
    phone.title = `score ${p.score.toFixed(2)} of 2` + (p.heard ? `; heard ${p.heard}` : "");
    phones.append(phone);
  }
  card.append(phones);
  return card;
}
