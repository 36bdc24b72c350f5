// The face on the AU Vector node: redrawn from the sliders, the preset and the spec as they change.
// The server says what the preset and spec mean (POST /fineface/au_vector runs the node's own parser) and
// what each AU is called (GET /fineface/aus); this file only adds the sliders, as the node does, and draws.
import { app } from "../../scripts/app.js";
import { api } from "../../scripts/api.js";
import { captionLines, captionText, drawFace, drawMessage, faceFrame, LINE, regionAt, regionRect } from "./face_draw.js";
import { holdRoom } from "./own_canvas.js";
import { ownWidget } from "./own_widget.js";

const NODE = "FineFaceAUVector";
const FACE_HEIGHT = 190;
const WIDTH = 440; // the slider labels ("AU15 Lip Corner Depressor") whole, on the canvas and as Vue nodes
const ASK_DELAY_MS = 60; // one request per pause while a slider is dragged

let schema = null;
let schemaError = null;

async function loadSchema() {
    try {
        const res = await api.fetchApi("/fineface/aus");
        if (!res.ok) throw new Error(`the server answered ${res.status}`);
        schema = await res.json();
    } catch (err) {
        schemaError = `FineFace: the AU list did not load (${err.message}); restart ComfyUI so that it loads the pack's routes.`;
        console.warn(schemaError);
    }
}

const faceWidget = (node) => node.widgets?.find((w) => w.name === "fineface_face");

// The canvas redraws its nodes; front ends that draw nodes as Vue components give a canvas widget its own
// canvas and a triggerDraw to repaint it.
function redraw(node) {
    node.setDirtyCanvas(true, true);
    faceWidget(node)?.triggerDraw?.();
}

const widgetValue = (node, name) => node.widgets?.find((w) => w.name === name)?.value;

function sliders(node) {
    const out = {};
    for (const code of schema.order) out[code] = Number(widgetValue(node, code) ?? 0);
    return out;
}

// Ask the server what the preset and spec give and whether the node would accept the whole state.
async function ask(node, face, state, key) {
    let answer;
    try {
        const res = await api.fetchApi("/fineface/au_vector", {
            method: "POST",
            headers: { "Content-Type": "application/json" },
            body: JSON.stringify(state),
        });
        if (res.ok) {
            answer = await res.json();
        } else {
            const said = await res.json().then((body) => body.error, () => null);
            answer = { base: null, error: `FineFace: the server refused the face's request (${res.status}${said ? `: ${said}` : ""}); restart ComfyUI so that it loads the pack's routes.` };
        }
    } catch (err) {
        answer = { base: null, error: `FineFace: no answer from the server about this spec (${err.message}).` };
    }
    if (face.key !== key) return; // a newer state was asked for meanwhile
    face.answer = answer;
    face.answeredKey = key;
    redraw(node);
}

function schedule(node, face) {
    const state = { preset: widgetValue(node, "preset") ?? "none", spec: widgetValue(node, "spec") ?? "", sliders: sliders(node) };
    const key = JSON.stringify(state);
    if (key === face.key) return;
    face.key = key;
    clearTimeout(face.timer);
    face.timer = setTimeout(() => ask(node, face, state, key), ASK_DELAY_MS);
}

// The linked base as the last run read it (node_text.js puts it there), while the same link still feeds it.
function linkedBase(node) {
    const input = node.inputs?.find((i) => i.name === "base");
    if (input?.link == null) return { linked: false, rows: null };
    const last = node.finefaceBase;
    return { linked: true, rows: last && last.link === input.link ? last.rows : null, from: last?.from };
}

/** The values drawn: the server's vector for the preset and first spec line, plus the sliders, plus the
 * linked base's first row when a run has read it. */
function shownValues(node, face, base) {
    const values = sliders(node);
    const own = face.answer?.base;
    if (own) schema.order.forEach((code, i) => { values[code] += own[0][i]; });
    if (base.rows) schema.order.forEach((code, i) => { values[code] += Number(base.rows[0][i]) || 0; });
    return values;
}

function setHover(node, face, hover) {
    if (hover === face.hover) return;
    face.hover = hover;
    redraw(node);
}

// A face on a canvas of its own (Vue nodes) gets no node mouse events: it listens itself.
function hoverOwnCanvas(node, face, canvas) {
    if (face.listening === canvas) return;
    face.listening = canvas;
    canvas.addEventListener("pointermove", (e) => {
        if (!schema || !face.frame) return;
        const m = face.transform, scale = canvas.width / canvas.getBoundingClientRect().width;
        const x = (e.offsetX * scale - m.e) / m.a, y = (e.offsetY * scale - m.f) / m.d;
        setHover(node, face, regionAt(face.frame, x, y));
    });
    canvas.addEventListener("pointerleave", () => setHover(node, face, null));
}

function makeFaceWidget(node) {
    const face = { key: null, answer: null, answeredKey: null, hover: null, frame: null, lines: [], drawMs: [] };
    const widget = ownWidget("fineface_face", {
        fineface: face,
        computeSize(width) {
            return [width, FACE_HEIGHT + Math.max(1, face.lines.length) * LINE + 8];
        },
        draw(ctx, node, width, y) {
            const t0 = performance.now();
            const frame = faceFrame(10, y, width - 20, FACE_HEIGHT);
            face.frame = frame;
            face.canvas = ctx.canvas; // where the face is, for hovering and for the tests' pixel reads
            face.transform = ctx.getTransform();
            if (ctx.canvas !== app.canvas?.canvas) hoverOwnCanvas(node, face, ctx.canvas);
            face.rects = Object.fromEntries(Object.keys(schema?.regions ?? {}).map((r) => [r, regionRect(frame, r)]));
            if (!schema) {
                face.lines = captionLines(ctx, schemaError ?? "FineFace: loading the AU list...", frame.w);
                drawMessage(ctx, frame, face.lines);
                holdRoom(ctx, app.canvas?.canvas, widget.computeSize(width)[1]);
                return;
            }
            schedule(node, face);
            const base = linkedBase(node);
            const values = shownValues(node, face, base);
            const notes = [];
            if (face.answer?.base?.length > 1) notes.push(`line 1 of ${face.answer.base.length}`);
            // a linked base is only known when the graph runs: until then the face says it leaves it out
            if (base.rows) {
                const of = base.rows.length > 1 ? ` (image 1 of ${base.rows.length})` : "";
                notes.push(`with the base ${base.from ?? "linked"} read in the last run${of}`);
            } else if (base.linked) {
                notes.push("without the linked base");
            }
            const caption = captionText(schema, values, face.answer?.error, notes.join(", "));
            const wrapped = captionLines(ctx, caption.text, frame.w);
            if (wrapped.length !== face.lines.length) {
                face.lines = wrapped;
                const need = node.computeSize();
                if (need[1] > node.size[1]) node.setSize([node.size[0], need[1]]);
            }
            face.lines = wrapped;
            face.hoverLines = drawFace(ctx, frame, schema, values, face.hover, { lines: wrapped, color: caption.color });
            holdRoom(ctx, app.canvas?.canvas, widget.computeSize(width)[1]);
            face.drawMs.push(performance.now() - t0);
            if (face.drawMs.length > 200) face.drawMs.shift();
        },
    });
    return widget;
}

function label(node) {
    for (const w of node.widgets ?? []) {
        const au = schema?.aus.find((a) => a.code === w.name);
        if (au) w.label = `${au.code} ${au.name}`; // the name (and the saved values) stay as they are
    }
}

app.registerExtension({
    name: "FineFace.AUFace",
    async beforeRegisterNodeDef(nodeType, nodeData) {
        // a refresh of the node definitions registers the type again: wrap its prototype once
        if (nodeData.name !== NODE || nodeType.prototype.finefaceFace) return;
        nodeType.prototype.finefaceFace = true;
        await loadSchema();
        const created = nodeType.prototype.onNodeCreated;
        nodeType.prototype.onNodeCreated = function () {
            const result = created?.apply(this, arguments);
            label(this);
            const widget = this.addCustomWidget(makeFaceWidget(this));
            const node = this;
            for (const w of this.widgets) {
                if (w === widget) continue;
                const callback = w.callback;
                w.callback = function () {
                    const r = callback?.apply(this, arguments);
                    redraw(node);
                    return r;
                };
            }
            this.setSize([Math.max(this.size[0], WIDTH), this.computeSize()[1]]);
            return result;
        };
        const moved = nodeType.prototype.onMouseMove;
        nodeType.prototype.onMouseMove = function (e, pos) {
            const r = moved?.apply(this, arguments);
            const face = faceWidget(this)?.fineface;
            if (face?.frame && schema && face.canvas === app.canvas?.canvas) setHover(this, face, regionAt(face.frame, pos[0], pos[1]));
            return r;
        };
        const left = nodeType.prototype.onMouseLeave;
        nodeType.prototype.onMouseLeave = function () {
            const r = left?.apply(this, arguments);
            const face = faceWidget(this)?.fineface;
            if (face) setHover(this, face, null);
            return r;
        };
    },
});
