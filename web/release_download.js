// "Download weights" on FineFace Release Loader: the front ends' missing-models dialogs cannot fetch the release's
// .ckpt files (1.35 allows .safetensors / .sft only; the legacy front end has no dialog), so the node asks the
// pack's server to (POST /fineface/download names a release, nothing else) and shows the progress it reports.
// Files the pack does not fetch (LibreFace's model, on AU From Image) get a button that says where they come from.
import { app } from "../../scripts/app.js";
import { api } from "../../scripts/api.js";
import { captionLines, FONT, LINE } from "./face_draw.js";
import { holdRoom } from "./own_canvas.js";
import { ownWidget } from "./own_widget.js";

const NODE = "FineFaceReleaseLoader";
const LABEL = "Download weights"; // fixed: Vue nodes draw a button's label once, so what changes is said below it
const WHERE_NODES = { FineFaceAUFromImage: { release: "libreface", label: "Where to get the LibreFace model" } };
const EVENT = "fineface.download";
const BAR = 6;
const POLL_MS = 1000; // a page that missed an event (a reconnect) still sees the end

let catalogue = null; // GET /fineface/download: the releases' files, the folder, what is fetched elsewhere
let polling = null;

async function getJson(path, options) {
    const res = await api.fetchApi(path, options);
    const body = await res.json().catch(() => ({}));
    return { ok: res.ok, status: res.status, body };
}

const loaders = () => (app.graph?._nodes ?? []).filter((n) => n.type === NODE);
const withButton = () => (app.graph?._nodes ?? []).filter((n) => n.type === NODE || WHERE_NODES[n.type]);
const statusWidget = (node) => node.widgets?.find((w) => w.name === "fineface_download_status");
const button = (node) => node.widgets?.find((w) => w.name === "fineface_download");

/** The release the node's file names belong to (SD 1.5 when they are its files, else the paper's SD 2.1). */
function releaseOf(node) {
    if (WHERE_NODES[node.type]) return WHERE_NODES[node.type].release;
    const names = (node.widgets ?? []).filter((w) => w.type === "combo").map((w) => w.value);
    const sd15 = catalogue?.releases?.sd15?.files ?? [];
    return names.some((n) => sd15.includes(n)) ? "sd15" : "sd21";
}

function show(node, status) {
    const widget = statusWidget(node), b = button(node);
    if (!widget || !b) return;
    widget.status = status;
    widget.idle = status ? "" : idleText(node);
    const need = node.computeSize();
    if (need[1] > node.size[1]) node.setSize([node.size[0], need[1]]);
    node.setDirtyCanvas(true, true);
    widget.triggerDraw?.();
}

/** Before any download: which of the node's files are missing, and which release the button fetches. */
function idleText(node) {
    if (WHERE_NODES[node.type]) return "";
    const missing = (node.widgets ?? []).filter((w) => w.type === "combo" && w.value !== "none"
        && (String(w.value).startsWith("(no ") || !(w.options?.values ?? []).includes(w.value)));
    if (!missing.length) return "";
    const release = releaseOf(node), name = catalogue?.releases?.[release]?.name ?? release;
    const names = missing.map((w) => String(w.value).startsWith("(no ") ? w.name : w.value).join(", ");
    return `Not in models/fineface: ${names}. "${LABEL}" fetches the ${name} release.`;
}

function statusText(status, idle) {
    if (!status) return idle ?? "";
    if (status.state === "running") {
        const pct = status.total ? ` ${Math.floor((100 * status.done) / status.total)}%` : "";
        return `${status.file ?? "starting"}: ${(status.done / 1e6).toFixed(1)} MB${pct} (file ${status.index + 1} of ${status.count})`;
    }
    if (status.state === "done") {
        const also = catalogue?.elsewhere?.checkpoint ? ` ${catalogue.elsewhere.checkpoint}` : "";
        return `${status.message}. The node lists them now.${also}`;
    }
    return status.message ?? "";
}

function makeStatusWidget(node) {
    const widget = ownWidget("fineface_download_status", {
        status: null,
        lines: [],
        computeSize(width) {
            const bar = widget.status?.state === "running" ? BAR + 4 : 0;
            return [width, widget.lines.length ? bar + widget.lines.length * LINE + 6 : 4];
        },
        draw(ctx, node, width, y) {
            const status = widget.status, text = statusText(status, widget.idle);
            widget.lines = text ? captionLines(ctx, text, width - 24) : [];
            widget.shown = widget.lines.join(" "); // what the node says, for the tests
            holdRoom(ctx, app.canvas?.canvas, widget.computeSize(width)[1]);
            if (!text) return;
            ctx.save();
            let top = y + 2;
            if (status?.state === "running") {
                ctx.fillStyle = "#333";
                ctx.fillRect(15, top, width - 30, BAR);
                ctx.fillStyle = "#4a8";
                ctx.fillRect(15, top, (width - 30) * (status.total ? Math.min(1, status.done / status.total) : 0), BAR);
                top += BAR + 4;
            }
            ctx.font = FONT;
            ctx.textAlign = "left";
            ctx.fillStyle = status?.state === "failed" ? "#f66" : status?.state === "done" ? "#8c8" : "#ccc";
            widget.lines.forEach((line, i) => ctx.fillText(line, 15, top + 11 + i * LINE));
            ctx.restore();
            const need = node.computeSize();
            if (need[1] > node.size[1]) node.setSize([node.size[0], need[1]]);
        },
    });
    return widget;
}

// The menus of every Release Loader, as the server lists models/fineface now; no widget's value is changed.
async function refreshMenus() {
    const { ok, body } = await getJson(`/object_info/${NODE}`);
    if (!ok) return;
    const inputs = body[NODE]?.input?.required ?? {};
    for (const node of loaders()) {
        for (const w of node.widgets ?? []) {
            if (w.type === "combo" && inputs[w.name]) w.options.values = inputs[w.name][0];
        }
        node.setDirtyCanvas(true, true);
    }
}

function showEverywhere(status) {
    for (const node of withButton()) {
        if (releaseOf(node) === status.release || statusWidget(node)?.status?.release === status.release) show(node, status);
    }
    if (status.state === "done") refreshMenus();
    if (status.state !== "running") stopPolling();
}

function startPolling(release) {
    stopPolling();
    polling = setInterval(async () => {
        const { ok, body } = await getJson("/fineface/download").catch(() => ({ ok: false }));
        const job = ok && body.jobs?.[release];
        if (job) showEverywhere(job);
    }, POLL_MS);
}

function stopPolling() {
    clearInterval(polling);
    polling = null;
}

async function download(node) {
    const release = releaseOf(node);
    if (statusWidget(node)?.status?.state === "running") return;
    if (!WHERE_NODES[node.type]) show(node, { release, state: "running", done: 0, total: null, index: 0, count: catalogue?.releases?.[release]?.files.length ?? 1, file: null });
    let answer;
    try {
        answer = await getJson("/fineface/download", {
            method: "POST",
            headers: { "Content-Type": "application/json" },
            body: JSON.stringify({ release }),
        });
    } catch (err) {
        show(node, { release, state: "failed", message: `FineFace: no answer from the server (${err.message}).` });
        return;
    }
    if (!answer.ok) {
        const said = answer.body?.error ?? `the server answered ${answer.status}`;
        show(node, { release, state: "failed", message: `FineFace: ${said}${answer.status === 404 ? "; restart ComfyUI so that it loads the pack's routes" : ""}` });
        return;
    }
    showEverywhere(answer.body);
    if (answer.body.state === "running") startPolling(answer.body.release);
}

app.registerExtension({
    name: "FineFace.ReleaseDownload",
    async setup() {
        api.addEventListener(EVENT, ({ detail }) => showEverywhere(detail));
    },
    async beforeRegisterNodeDef(nodeType, nodeData) {
        if ((nodeData.name !== NODE && !WHERE_NODES[nodeData.name]) || nodeType.prototype.finefaceDownload) return;
        nodeType.prototype.finefaceDownload = true;
        try {
            const { ok, body } = catalogue ? { ok: false } : await getJson("/fineface/download");
            if (ok) catalogue = body;
        } catch (err) {
            console.warn(`FineFace: the download list did not load (${err.message})`);
        }
        const created = nodeType.prototype.onNodeCreated;
        nodeType.prototype.onNodeCreated = function () {
            const result = created?.apply(this, arguments);
            const node = this;
            const b = this.addWidget("button", "fineface_download", null, () => download(node), { serialize: false });
            b.serialize = false;
            b.label = WHERE_NODES[this.type]?.label ?? LABEL;
            this.addCustomWidget(makeStatusWidget(this));
            for (const w of this.widgets) {
                if (w.type !== "combo") continue;
                const callback = w.callback;
                w.callback = function () {
                    const r = callback?.apply(this, arguments);
                    if (statusWidget(node)?.status?.state !== "running") show(node, statusWidget(node)?.status);
                    return r;
                };
            }
            show(this, null);
            return result;
        };
        const configured = nodeType.prototype.onConfigure;
        nodeType.prototype.onConfigure = function () {
            const r = configured?.apply(this, arguments);
            show(this, statusWidget(this)?.status); // the saved file names say which release the button fetches
            return r;
        };
    },
});
