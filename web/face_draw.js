// A schematic face drawn from 12 AU intensities: each part moves as its AU's FACS description says.
// Pure drawing: the AU names, regions and values come from the server (fineface_core), never from here.
// Geometry is in face units: x from -1 (left edge) to 1, y from 0 (top of the head) to 1 (chin).

const BG = "#1b1d22";
const NEUTRAL = "#c8ccd4";
const ACTIVE = "#8fe388";
const EXTRAPOLATED = "#ffa63d"; // above 5: past what the model was trained on
const REVERSED = "#5aaeff"; // negative: the opposite movement
const TEXT = "#d8dbe0";
const ERROR = "#ff6b6b";

// Where each region sits, for hovering (face units); checked in this order.
const REGION_BOXES = [
    ["mouth", -0.56, 0.68, 0.56, 0.88],
    ["chin", -0.3, 0.88, 0.3, 1.12],
    ["jaw", -1.0, 0.78, 1.0, 1.15],
    ["nose", -0.2, 0.44, 0.2, 0.68],
    ["cheeks", -0.8, 0.5, 0.8, 0.7],
    ["eyes", -0.75, 0.35, 0.75, 0.5],
    ["brows", -0.8, 0.16, 0.8, 0.35],
];

// Intensity as a fraction of FACS E (5); the safe range -10..10 gives -2..2.
const amount = (v) => Math.max(-2, Math.min(2, (v || 0) / 5));

function statusColor(values, codes, trainedMax) {
    let color = NEUTRAL;
    for (const code of codes) {
        const v = values[code] || 0;
        if (v > trainedMax) return EXTRAPOLATED;
        if (v < 0) color = REVERSED;
        else if (v > 0 && color === NEUTRAL) color = ACTIVE;
    }
    return color;
}

/** The face's frame inside a widget box: where face units land in pixels. */
export function faceFrame(x, y, w, h) {
    const fh = h * 0.82;
    const fw = Math.min(w * 0.8, fh * 0.8);
    const cx = x + w / 2;
    const top = y + h * 0.06;
    return { x, y, w, h, cx, top, fw, fh, px: (ux) => cx + (ux * fw) / 2, py: (uy) => top + uy * fh };
}

/** The region (brows, eyes, ...) under a point in pixels, or null. */
export function regionAt(frame, px, py) {
    if (px < frame.x || px > frame.x + frame.w || py < frame.y || py > frame.y + frame.h) return null;
    const ux = ((px - frame.cx) * 2) / frame.fw;
    const uy = (py - frame.top) / frame.fh;
    for (const [name, x0, y0, x1, y1] of REGION_BOXES) {
        if (ux >= x0 && ux <= x1 && uy >= y0 && uy <= y1) return name;
    }
    return null;
}

/** A region's box in pixels (for tests and hover outlines). */
export function regionRect(frame, name) {
    const box = REGION_BOXES.find((b) => b[0] === name);
    const [, x0, y0, x1, y1] = box;
    return { x: frame.px(x0), y: frame.py(y0), w: frame.px(x1) - frame.px(x0), h: frame.py(y1) - frame.py(y0) };
}

function stroke(ctx, color, width, path) {
    ctx.beginPath();
    path();
    ctx.strokeStyle = color;
    ctx.lineWidth = width;
    ctx.stroke();
}

function drawHead(ctx, f, v, color) {
    const rx = f.fw / 2;
    const cy = f.py(0.48);
    const jaw = amount(v.AU26);
    ctx.beginPath();
    ctx.ellipse(f.cx, cy, rx, f.fh * 0.48, 0, Math.PI, 2 * Math.PI);
    ctx.strokeStyle = NEUTRAL;
    ctx.lineWidth = 2;
    ctx.stroke();
    stroke(ctx, color.jaw, 2, () => ctx.ellipse(f.cx, cy, rx, f.fh * (0.52 + 0.08 * jaw), 0, 0, Math.PI));
}

function drawBrows(ctx, f, v, color) {
    const a1 = amount(v.AU1), a2 = amount(v.AU2), a4 = amount(v.AU4);
    for (const s of [-1, 1]) {
        const inner = [s * (0.14 - 0.06 * a4), 0.3 - 0.07 * a1 + 0.05 * a4];
        const outer = [s * 0.64, 0.3 - 0.07 * a2 + 0.025 * a4];
        const mid = [(inner[0] + outer[0]) / 2, Math.min(inner[1], outer[1]) - 0.035];
        stroke(ctx, color.brows, 3.5, () => {
            ctx.moveTo(f.px(inner[0]), f.py(inner[1]));
            ctx.quadraticCurveTo(f.px(mid[0]), f.py(mid[1]), f.px(outer[0]), f.py(outer[1]));
        });
    }
    if (a4 > 0) { // the frown's vertical furrows between the brows
        stroke(ctx, color.brows, 1.5, () => {
            for (const s of [-1, 1]) {
                ctx.moveTo(f.px(s * 0.05), f.py(0.31));
                ctx.lineTo(f.px(s * 0.05), f.py(0.31 + 0.06 * Math.min(a4, 2)));
            }
        });
    }
}

function drawEyes(ctx, f, v, color) {
    const a5 = amount(v.AU5), a6 = amount(v.AU6);
    const upper = Math.max(0, 0.05 * (1 + 0.9 * a5)); // AU5 widens; negative closes
    const lower = Math.max(0, 0.035 * (1 - 0.8 * a6)); // AU6 narrows the eye from below
    for (const s of [-1, 1]) {
        const cx = s * 0.35, cy = 0.43, half = 0.17;
        const l = [f.px(cx - half), f.py(cy)], r = [f.px(cx + half), f.py(cy)];
        if (upper + lower > 0.004) {
            ctx.beginPath();
            ctx.arc(f.px(cx), f.py(cy - upper * 0.3 + lower * 0.3), Math.min((upper + lower) * 0.45, 0.045) * f.fh,
                0, 2 * Math.PI);
            ctx.fillStyle = NEUTRAL;
            ctx.fill();
        }
        stroke(ctx, color.lids, 2, () => {
            ctx.moveTo(...l);
            ctx.quadraticCurveTo(f.px(cx), f.py(cy - 2 * upper), ...r);
        });
        stroke(ctx, color.lower, 1.5, () => {
            ctx.moveTo(...l);
            ctx.quadraticCurveTo(f.px(cx), f.py(cy + 2 * lower), ...r);
        });
    }
}

function drawCheeks(ctx, f, v, color) {
    const a6 = amount(v.AU6);
    for (const s of [-1, 1]) {
        const y = 0.6 - 0.05 * a6;
        if (a6 !== 0) {
            ctx.beginPath();
            ctx.ellipse(f.px(s * 0.5), f.py(y), 0.12 * f.fw, 0.05 * f.fh, 0, 0, 2 * Math.PI);
            ctx.globalAlpha = Math.min(0.55, 0.3 * Math.abs(a6) + 0.05);
            ctx.fillStyle = color.cheeks;
            ctx.fill();
            ctx.globalAlpha = 1;
        }
        stroke(ctx, color.cheeks, 1.5, () => {
            ctx.moveTo(f.px(s * 0.3), f.py(y + 0.04));
            ctx.quadraticCurveTo(f.px(s * 0.42), f.py(y - 0.02 - 0.02 * a6), f.px(s * 0.62), f.py(y - 0.01));
        });
    }
}

function drawNose(ctx, f, v, color) {
    const a9 = amount(v.AU9);
    const tip = 0.645 - 0.025 * a9; // AU9 draws the nostrils up
    stroke(ctx, color.nose, 2, () => {
        for (const s of [-1, 1]) {
            ctx.moveTo(f.px(s * 0.06), f.py(0.46));
            ctx.lineTo(f.px(s * 0.08), f.py(tip - 0.03));
        }
        ctx.moveTo(f.px(-0.15), f.py(tip - 0.01));
        ctx.quadraticCurveTo(f.px(0), f.py(tip + 0.04), f.px(0.15), f.py(tip - 0.01));
    });
    if (a9 > 0) { // the wrinkles across the bridge
        stroke(ctx, color.nose, 1.2, () => {
            const n = Math.min(5, Math.ceil(a9 * 3));
            for (let i = 0; i < n; i++) {
                const y = 0.48 + i * 0.022;
                ctx.moveTo(f.px(-0.09), f.py(y));
                ctx.lineTo(f.px(0.09), f.py(y + 0.006));
            }
        });
    }
}

function drawMouth(ctx, f, v, color) {
    const a9 = amount(v.AU9), a12 = amount(v.AU12), a15 = amount(v.AU15), a17 = amount(v.AU17);
    const a20 = amount(v.AU20), a25 = amount(v.AU25), a26 = amount(v.AU26);
    const cornerX = 0.3 + 0.06 * a12 + 0.1 * a20; // AU12 pulls back, AU20 stretches sideways
    const cornerY = 0.78 - 0.08 * a12 + 0.08 * a15; // AU12 up, AU15 down
    const upper = 0.775 - 0.025 * Math.max(a9, 0); // AU9 lifts the upper lip
    const gap = Math.max(0, 0.035 * a25) + Math.max(0, 0.09 * a26); // AU25 parts the lips, AU26 drops the jaw
    const lower = Math.max(upper + 0.008, 0.79 + gap - 0.03 * a17); // AU17 pushes the lower lip up
    const ctrl = (mid) => 2 * mid - cornerY; // a quadratic through (0, mid) at the centre
    const L = [f.px(-cornerX), f.py(cornerY)], R = [f.px(cornerX), f.py(cornerY)];
    if (lower - upper > 0.02) {
        ctx.beginPath();
        ctx.moveTo(...L);
        ctx.quadraticCurveTo(f.px(0), f.py(ctrl(upper)), ...R);
        ctx.quadraticCurveTo(f.px(0), f.py(ctrl(lower)), ...L);
        ctx.fillStyle = "#5a1f24";
        ctx.fill();
    }
    stroke(ctx, color.mouth, 3, () => {
        ctx.moveTo(...L);
        ctx.quadraticCurveTo(f.px(0), f.py(ctrl(upper)), ...R);
        ctx.moveTo(...L);
        ctx.quadraticCurveTo(f.px(0), f.py(ctrl(lower)), ...R);
    });
    const chinY = 0.93 + 0.09 * Math.max(a26, 0) - 0.035 * a17;
    stroke(ctx, color.chin, 2, () => {
        ctx.moveTo(f.px(-0.16), f.py(chinY));
        ctx.quadraticCurveTo(f.px(0), f.py(chinY + 0.04 - 0.03 * a17), f.px(0.16), f.py(chinY));
    });
    if (a17 > 0) { // the chin boss wrinkles
        ctx.fillStyle = color.chin;
        for (let i = 0; i < Math.min(6, Math.ceil(a17 * 4)); i++) {
            ctx.fillRect(f.px(-0.1 + (i % 3) * 0.1) - 1, f.py(chinY - 0.025 - Math.floor(i / 3) * 0.02), 2, 2);
        }
    }
}

function wrap(ctx, text, width) {
    const lines = [];
    let line = "";
    for (const word of text.split(/\s+/)) {
        const next = line ? `${line} ${word}` : word;
        if (line && ctx.measureText(next).width > width) {
            lines.push(line);
            line = word;
        } else {
            line = next;
        }
    }
    if (line) lines.push(line);
    return lines;
}

const fmt = (v) => String(Math.round(v * 100) / 100);

/** The caption under the face: the active AUs with their FACS names, or the server's refusal. */
export function captionText(schema, values, error, note) {
    if (error) return { text: error, color: ERROR };
    const [, trainedMax] = schema.trained_range;
    const active = schema.aus.filter((au) => (values[au.code] || 0) !== 0).map((au) => {
        const v = values[au.code];
        const flag = v > trainedMax ? " (extrapolated)" : v < 0 ? " (reversed)" : "";
        return `${au.code} ${au.name} ${fmt(v)}${flag}`;
    });
    const text = active.length ? active.join(" · ") : "neutral: no AU active";
    return { text: note ? `${note}: ${text}` : text, color: TEXT };
}

export const FONT = "12px Arial";
export const LINE = 15;

/** How many caption lines a text takes at this width (the widget sizes itself by it). */
export function captionLines(ctx, text, width) {
    ctx.font = FONT;
    return wrap(ctx, text, width - 12);
}

/** No face to draw (the AU list did not load): the box, and why, where the caption goes. */
export function drawMessage(ctx, frame, lines) {
    ctx.save();
    ctx.fillStyle = BG;
    ctx.fillRect(frame.x, frame.y, frame.w, frame.h + lines.length * LINE + 6);
    ctx.font = FONT;
    ctx.textAlign = "left";
    ctx.fillStyle = ERROR;
    lines.forEach((line, i) => ctx.fillText(line, frame.x + 6, frame.y + frame.h + 12 + i * LINE));
    ctx.restore();
}

/**
 * Draw the face for ``values`` ({AU12: 3, ...}) into the box, the hovered region's AUs on top and the caption
 * lines below. ``schema`` is the server's /fineface/aus answer. Returns the hover text's lines.
 */
export function drawFace(ctx, frame, schema, values, hover, caption) {
    const f = frame;
    const regionCodes = schema.regions;
    const trainedMax = schema.trained_range[1];
    const color = {
        brows: statusColor(values, regionCodes.brows, trainedMax),
        lids: statusColor(values, ["AU5"], trainedMax),
        lower: statusColor(values, ["AU6"], trainedMax),
        cheeks: statusColor(values, regionCodes.cheeks, trainedMax),
        nose: statusColor(values, regionCodes.nose, trainedMax),
        mouth: statusColor(values, regionCodes.mouth, trainedMax),
        chin: statusColor(values, regionCodes.chin, trainedMax),
        jaw: statusColor(values, regionCodes.jaw, trainedMax),
    };
    ctx.save();
    ctx.fillStyle = BG;
    ctx.fillRect(f.x, f.y, f.w, f.h + caption.lines.length * LINE + 6);
    ctx.lineCap = "round";
    drawHead(ctx, f, values, color);
    drawBrows(ctx, f, values, color);
    drawEyes(ctx, f, values, color);
    drawCheeks(ctx, f, values, color);
    drawNose(ctx, f, values, color);
    drawMouth(ctx, f, values, color);
    ctx.font = FONT;
    ctx.textAlign = "left";
    let hoverLines = [];
    if (hover) {
        const r = regionRect(f, hover);
        ctx.strokeStyle = "#ffffff55";
        ctx.lineWidth = 1;
        ctx.strokeRect(r.x, r.y, r.w, r.h);
        const names = regionCodes[hover].map((code) => {
            const au = schema.aus.find((a) => a.code === code);
            return `${code} ${au.name}`;
        });
        hoverLines = wrap(ctx, `${hover}: ${names.join(", ")}`, f.w - 12);
        ctx.fillStyle = "#000000b0";
        ctx.fillRect(f.x, f.y, f.w, hoverLines.length * LINE + 6);
        ctx.fillStyle = TEXT;
        hoverLines.forEach((line, i) => ctx.fillText(line, f.x + 6, f.y + 14 + i * LINE));
    }
    ctx.fillStyle = caption.color;
    caption.lines.forEach((line, i) => ctx.fillText(line, f.x + 6, f.y + f.h + 12 + i * LINE));
    ctx.restore();
    return hoverLines;
}
