// The learner page: record (MediaRecorder) or choose audio, send it with the text to /v1/assess, colour the result.
// Recordings are converted to 16 kHz mono WAV in the browser: MediaRecorder gives WebM/Ogg Opus, which the
// server's decoder (libsndfile) does not read in every build.
"use strict";

const TARGET_RATE = 16000;
const WORD_GOOD = 8, WORD_FAIR = 5;      // word accuracy, 0-10
const PHONE_GOOD = 1.5, PHONE_FAIR = 1;  // phone score, 0-2 (below 1 the server flags it mispronounced)

const $ = (id) => document.getElementById(id);
let recorder = null;
let recordedWav = null;

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
    const response = await fetch("/v1/assess", { method: "POST", body: form });
    const body = await response.json().catch(() => ({ error: `server answered ${response.status}` }));
    if (!response.ok) {
      const retry = response.headers.get("Retry-After");
      return showMessage(body.error + (retry ? ` (retry in ${retry} s)` : ""), true);
    }
    showMessage("", false);
    showResult(body);
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

function grade(value, good, fair) {
  return value >= good ? "good" : value >= fair ? "fair" : "poor";
}

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function showResult(result) {
  const table = $("sentence-scores");
  table.replaceChildren();
  for (const [aspect, value] of Object.entries(result.sentence)) {
    const row = table.insertRow();
    row.insertCell().textContent = aspect;
    const cell = row.insertCell();
    cell.textContent = value.toFixed(1);
    cell.className = grade(value, WORD_GOOD, WORD_FAIR);
  }
  const rationale = $("rationale");
  rationale.textContent = result.rationale ? result.rationale.text : "";
  rationale.title = result.rationale ? `written by: ${result.rationale.source}` : "";
  const words = $("words");
  words.replaceChildren();
  for (const word of result.words) words.append(wordCard(word));
  if (result.alignment_fallback) {
    words.append(element("p", "", "Note: the sounds could not be aligned exactly; their timing is estimated."));
  }
  $("result").hidden = false;
}

function wordCard(word) {
  const card = element("div", `word ${grade(word.accuracy, WORD_GOOD, WORD_FAIR)}`);
  card.append(element("div", "text", word.text));
  card.append(element("div", "score", `accuracy ${word.accuracy.toFixed(1)} · stress ${word.stress.toFixed(1)}`));
  const phones = element("div", "phones");
  for (const p of word.phones) {
    const phone = element("span", `phone ${p.mispronounced ? "poor" : grade(p.score, PHONE_GOOD, PHONE_FAIR)}`,
                          p.phone.replace(/\d$/, ""));
    phone.title = `score ${p.score.toFixed(2)} of 2` + (p.heard ? `; heard ${p.heard}` : "");
    phones.append(phone);
  }
  card.append(phones);
  return card;
}
