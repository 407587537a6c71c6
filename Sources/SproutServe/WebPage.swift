/// The page at `/`: choose or drop a photo, see the top-5 with bars and the model's version
/// (for a line reader: the text read, each character shaded by its confidence).
/// Plain HTML and JavaScript, no external resources (the server may have no internet).
/// `/?selftest=1` classifies a generated image on load, and `/?selftest=URL` the photo at URL
/// (fetched, then submitted through the same code as a chosen file), for the headless-browser checks;
/// `&why=1` ticks the Grad-CAM box first. For a line reader the self-test draws "27913" as a line.
enum WebPage {
    static let html = #"""
<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sprout — image recognition</title>
<style>
  body { font: 16px/1.4 system-ui, sans-serif; max-width: 40rem; margin: 2rem auto; padding: 0 1rem; color: #1d2a1d; }
  h1 { font-size: 1.4rem; } select, input { font: inherit; }
  #drop { border: 2px dashed #7a9a7a; border-radius: 8px; padding: 2rem; text-align: center; margin: 1rem 0; cursor: pointer; }
  #drop.over { background: #eef6ee; }
  #preview { max-width: 16rem; max-height: 16rem; display: block; margin: 0.5rem auto; }
  #preview.tiny { width: 8rem; image-rendering: pixelated; }
  .row { display: flex; align-items: center; gap: 0.5rem; margin: 0.3rem 0; }
  .label { width: 9rem; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
  .bar { height: 1rem; background: #4c8c4c; border-radius: 3px; }
  .pct { width: 4rem; text-align: right; font-variant-numeric: tabular-nums; }
  #meta, #error, #dims { color: #555; font-size: 0.9rem; } #error { color: #a00; }
  .reading { font: 2rem/1.2 ui-monospace, monospace; letter-spacing: 0.15em; }
  #heat { max-width: 16rem; display: block; margin: 0.5rem auto; image-rendering: auto; } #heat.tiny { width: 8rem; image-rendering: pixelated; }
</style>
</head>
<body>
<h1>🌱 Sprout</h1>
<label>Model <select id="model"></select></label>
<div id="drop">Drop a photo here, or click to choose one<input id="file" type="file" accept="image/png,image/jpeg" hidden>
  <img id="preview" alt="" hidden><span id="dims"></span></div>
<label><input id="why" type="checkbox"> Why? Show where the model looked (Grad-CAM)</label>
<img id="heat" alt="Grad-CAM heat map" hidden><p id="heatnote" class="note"></p>
<div id="results"></div>
<p id="meta"></p>
<p id="error"></p>
<script>
const $ = (id) => document.getElementById(id);
const models = {};
async function loadModels() {
  const r = await fetch("/v1/models");
  const body = await r.json();
  if (!r.ok) { $("error").textContent = body.error || r.statusText; return; }
  for (const m of body.models) {
    models[m.name] = m;
    const o = document.createElement("option");
    o.value = m.name; o.textContent = `${m.name} (${m.model}, step ${m.version})`;
    $("model").appendChild(o);
  }
  const reader = () => models[$("model").value] && models[$("model").value].task === "recognize";
  // Grad-CAM explains a class; a line reader reads text, so its page has no "Why?" box.
  const update = () => { $("why").parentElement.hidden = reader(); };
  $("model").onchange = update; update();
}
async function recognize(blob) {
  // A line reader: the text, each character shaded by its confidence.
  const form = new FormData(); form.append("image", blob, "image");
  const name = $("model").value;
  const r = await fetch(`/v1/models/${encodeURIComponent(name)}:recognize?beam=4`, { method: "POST", body: form });
  const body = await r.json();
  if (!r.ok) { $("results").textContent = ""; $("error").textContent = body.error || r.statusText; return; }
  $("results").innerHTML = "";
  const line = document.createElement("p"); line.id = "text"; line.className = "reading";
  for (const c of body.characters) {
    const span = document.createElement("span");
    span.textContent = c.character; span.title = `${(100 * c.confidence).toFixed(1)}%`;
    span.style.opacity = Math.max(0.35, c.confidence);
    line.appendChild(span);
  }
  if (!body.characters.length) line.textContent = "(nothing read)";
  $("results").appendChild(line);
  const least = body.characters.reduce((m, c) => Math.min(m, c.confidence), 1);
  $("meta").textContent = `${body.model}, version ${body.version} · read "${body.text}" · least sure character ${(100 * least).toFixed(1)}% · ${body.latency_ms.toFixed(1)} ms`;
  document.body.dataset.recognized = body.text;
  document.body.dataset.classified = "true";
}
async function classify(blob) {
  $("error").textContent = ""; $("results").textContent = "…";
  if (models[$("model").value].task === "recognize") return recognize(blob);
  const form = new FormData(); form.append("image", blob, "image");
  const name = $("model").value;
  const r = await fetch(`/v1/models/${encodeURIComponent(name)}:classify?k=5`, { method: "POST", body: form });
  const body = await r.json();
  if (!r.ok) { $("results").textContent = ""; $("error").textContent = body.error || r.statusText; return; }
  $("results").innerHTML = "";
  for (const p of body.predictions) {
    const row = document.createElement("div"); row.className = "row prediction";
    row.innerHTML = `<span class="label"></span><span class="bar"></span><span class="pct"></span>`;
    row.children[0].textContent = p.label;
    row.children[1].style.width = `${Math.max(1, 16 * p.probability)}rem`;
    row.children[2].textContent = `${(100 * p.probability).toFixed(1)}%`;
    $("results").appendChild(row);
  }
  $("meta").textContent = `${body.model}, version ${body.version} · ${body.latency_ms.toFixed(1)} ms`;
  document.body.dataset.classified = "true";
  if ($("why").checked) explain(blob);
}
let lastBlob = null;
async function explain(blob) {
  const form = new FormData(); form.append("image", blob, "image");
  const r = await fetch(`/v1/models/${encodeURIComponent($("model").value)}:explain`, { method: "POST", body: form });
  const body = await r.json();
  if (!r.ok) { $("error").textContent = body.error || r.statusText; return; }
  const img = $("heat");
  img.onload = () => img.classList.toggle("tiny", img.naturalWidth < 96);
  img.src = `data:image/png;base64,${body.png_base64}`; img.hidden = false;
  $("heatnote").textContent = `Grad-CAM for "${body.label}" (${(100 * body.probability).toFixed(1)}%) at ${body.location}: red is where the evidence was.`;
  document.body.dataset.explained = "true";
}
function show(file) {
  // The browser draws the photo upright (EXIF orientation), as the server decodes it.
  const img = $("preview");
  img.onload = () => {
    img.classList.toggle("tiny", img.naturalWidth < 96);
    $("dims").textContent = `${img.naturalWidth}×${img.naturalHeight} px, ${(file.size / 1048576).toFixed(1)} MB`;
  };
  img.src = URL.createObjectURL(file); img.hidden = false;
  lastBlob = file; $("heat").hidden = true; $("heatnote").textContent = "";
  classify(file);
}
$("why").onchange = () => { if ($("why").checked && lastBlob) explain(lastBlob); else if (!$("why").checked) { $("heat").hidden = true; $("heatnote").textContent = ""; } };
$("drop").onclick = () => $("file").click();
$("file").onchange = () => $("file").files[0] && show($("file").files[0]);
$("drop").ondragover = (e) => { e.preventDefault(); $("drop").classList.add("over"); };
$("drop").ondragleave = () => $("drop").classList.remove("over");
$("drop").ondrop = (e) => { e.preventDefault(); $("drop").classList.remove("over"); e.dataTransfer.files[0] && show(e.dataTransfer.files[0]); };
// Self-test (headless browser check): draw an image on a canvas, submit it as a PNG upload.
async function selftest() {
  const m = models[$("model").value];
  const c = document.createElement("canvas");
  c.width = m.input_size.width; c.height = m.input_size.height;
  const g = c.getContext("2d");
  if (m.task === "recognize") {
    // A line reader: digits drawn light on black, as its training lines look.
    g.fillStyle = "black"; g.fillRect(0, 0, c.width, c.height);
    g.fillStyle = "white"; g.font = `bold ${Math.round(c.height * 0.75)}px sans-serif`; g.textBaseline = "middle";
    g.fillText("27913", 6, c.height / 2);
  } else {
  for (let y = 0; y < c.height; y++) for (let x = 0; x < c.width; x++) {
    g.fillStyle = `rgb(${(x * 37) % 256},${(y * 59) % 256},${((x + y) * 23) % 256})`; g.fillRect(x, y, 1, 1);
  }
  }
  const blob = await new Promise((done) => c.toBlob(done, "image/png"));
  show(blob);
}
async function selftestPhoto(url) {
  const r = await fetch(url);
  if (!r.ok) { $("error").textContent = `self-test photo: ${r.status}`; return; }
  show(await r.blob());
}
loadModels().then(() => {
  const params = new URLSearchParams(location.search);
  const test = params.get("selftest");
  if (params.get("why") !== null) $("why").checked = true;
  if (test === null) return;
  if (test.startsWith("http") || test.startsWith("/")) selftestPhoto(test); else selftest();
});
</script>
</body>
</html>
"""#
}
