// The page of `sklimg serve`: send the chosen or dropped images to POST /predict and
// show each with its label, a bar chart of its probabilities, the unknown answer and
// the saliency overlay. Plain DOM code: no framework, no build step, nothing fetched
// from elsewhere.
"use strict";

const $ = (id) => document.getElementById(id);
let model = null;

function headers() {
  const token = $("token").value;
  return token ? { Authorization: "Bearer " + token } : {};
}

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

async function loadModel() {
  const response = await fetch("model", { headers: headers() });
  if (response.status === 401) {
    // The server was started with --token: ask for it, then try again.
    $("token-label").hidden = false;
    $("model-info").textContent = "This server needs its token: enter it above.";
    return;
  }
  model = await response.json();
  const shape = model.input_shape ? model.input_shape.join(" x ") : "any";
  $("model-info").textContent =
    `${model.estimator} (${model.backbone}), ${model.classes.length} classes, ` +
    `input ${shape}` + (model.file ? `, ${model.file}` : "") +
    (model.unknown ? ", answers unknown" : "");
  $("saliency").disabled = !model.saliency;
  document.body.dataset.ready = "true";
}

function bars(probabilities) {
  const container = element("div", "bars");
  const entries = Object.entries(probabilities).sort((a, b) => b[1] - a[1]);
  for (const [name, value] of entries) {
    const row = element("div", "bar");
    row.append(element("span", "class", name));
    const track = element("span", "track");
    const fill = element("span", "fill");
    fill.style.display = "block";
    fill.style.width = (100 * value).toFixed(1) + "%";
    track.append(fill);
    row.append(track, element("span", "value", value.toFixed(3)));
    container.append(row);
  }
  return container;
}

function card(file, prediction) {
  const node = element("article", "card");
  const images = element("div", "images");
  const original = element("figure");
  const img = element("img");
  img.src = URL.createObjectURL(file);
  img.alt = file.name;
  original.append(img, element("figcaption", "", "image"));
  images.append(original);
  if (prediction.saliency) {
    const overlay = element("figure");
    const map = element("img");
    map.src = prediction.saliency;
    map.alt = "saliency map of " + file.name;
    overlay.append(map, element("figcaption", "", "saliency"));
    images.append(overlay);
  }
  node.append(images, element("div", "name", file.name));
  node.append(element("div", "label", String(prediction.label)));
  if (prediction.unknown !== undefined) {
    const score = prediction.unknown_score.toFixed(3);
    node.append(element("div", prediction.unknown ? "unknown flagged" : "unknown", prediction.unknown
      ? `unknown: unlike the training images (score ${score})`
      : `known (unknown score ${score})`));
  }
  node.append(bars(prediction.probabilities));
  return node;
}

function failure(files, message) {
  const node = element("article", "card error");
  node.append(element("div", "name", files.map((f) => f.name).join(", ")));
  node.append(element("div", "message", message));
  return node;
}

async function predict(files) {
  if (!files.length) return;
  if (!model) await loadModel();
  const limit = model && model.limits ? model.limits.max_batch : files.length;
  $("status").textContent = `Predicting ${files.length} image(s)\u2026`;
  // One request per max_batch images, the most one request may hold.
  for (let start = 0; start < files.length; start += limit) {
    const chunk = files.slice(start, start + limit);
    const form = new FormData();
    for (const file of chunk) form.append("file", file, file.name);
    const query = $("saliency").checked ? "?saliency=true" : "";
    let answer;
    try {
      const response = await fetch("predict" + query, {
        method: "POST", body: form, headers: headers(),
      });
      answer = await response.json();
      if (!response.ok) {
        $("results").prepend(failure(chunk, answer.error ? answer.error.message : response.statusText));
        continue;
      }
    } catch (error) {
      $("results").prepend(failure(chunk, "The server did not answer: " + error));
      continue;
    }
    const cards = document.createDocumentFragment();  // newest first, in upload order
    answer.predictions.forEach((prediction, i) => cards.append(card(chunk[i], prediction)));
    $("results").prepend(cards);
  }
  $("status").textContent = "";
}

const drop = $("drop");
drop.addEventListener("dragover", (event) => { event.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (event) => {
  event.preventDefault();
  drop.classList.remove("over");
  predict([...event.dataTransfer.files]);
});
$("files").addEventListener("change", (event) => {
  predict([...event.target.files]);
  event.target.value = "";
});
$("token").addEventListener("change", loadModel);
loadModel();
