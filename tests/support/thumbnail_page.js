// Page-side: a shipped workflow's template picture (<name>.jpg), drawn by the AU Vector widget's own code
// (web/face_draw.js) from the expressions the workflow sets, with the first line of its Start here note.
// tests/support/thumbnails.py writes the pictures with it; tests/test_web_templates.py re-draws and compares.
window.ffThumb = {
    async render(workflow, size) {
        const draw = await import("/extensions/comfyui-fineface/face_draw.js");
        const { api } = await import("/scripts/api.js");
        const schema = await (await api.fetchApi("/fineface/aus")).json();
        const zero = Object.fromEntries(schema.order.map((code) => [code, 0]));
        // each spec line of a preset + spec + sliders, as the AU Vector's face draws it: the server's vector plus the sliders
        const lines = async (preset, spec, sliders, name) => {
            const res = await api.fetchApi("/fineface/au_vector", {
                method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ preset, spec, sliders }),
            });
            const answer = await res.json();
            if (!answer.base) throw new Error(`${name}: ${answer.error}`);
            return answer.base.map((row, i) => ({
                values: Object.fromEntries(schema.order.map((code, j) => [code, row[j] + sliders[code]])),
                title: answer.titles[i] || null,
            }));
        };
        const faces = [];
        const nodes = [...workflow.nodes].sort((a, b) => a.pos[0] - b.pos[0] || a.pos[1] - b.pos[1]);
        for (const node of nodes) {
            const v = node.widgets_values ?? [];
            if (node.type === "FineFaceAUVector") {
                const sliders = Object.fromEntries(schema.order.map((code, i) => [code, Number(v[i]) || 0]));
                const based = node.inputs?.some((i) => i.name === "base" && i.link != null);
                for (const face of await lines(v[12], v[13], sliders, node.title ?? node.type)) {
                    if (based) face.based = true;
                    faces.push(face);
                }
            } else if (node.type === "FineFaceAUKeyframes") {
                for (const line of String(v[0]).split(/[\n;]/).filter((l) => l.includes(":"))) {
                    const [frame, spec] = [line.slice(0, line.indexOf(":")).trim(), line.slice(line.indexOf(":") + 1).trim()];
                    for (const face of await lines("none", spec, zero, node.type)) faces.push({ ...face, title: `frame ${frame}` });
                }
            } else if (node.type === "FineFaceAUSweep") {
                const code = String(v[0]).split(" ")[0], start = Number(v[1]), end = Number(v[2]);
                for (const x of [start, (start + end) / 2, end]) {
                    for (const face of await lines("none", `${code}@${x}`, zero, node.type)) faces.push({ ...face, title: `${code} ${x}` });
                }
            }
        }
        const shown = faces.slice(0, 8);
        const note = workflow.nodes.find((n) => n.title === "Start here")?.widgets_values?.[0] ?? "";
        const first = note.split("\n")[0];
        const sentence = first.match(/^.*?[.!?](?=\s+[A-Z]|$)/)?.[0] ?? first; // its first sentence

        const canvas = document.createElement("canvas");
        canvas.width = size;
        canvas.height = size;
        const ctx = canvas.getContext("2d");
        ctx.fillStyle = "#1b1d22";
        ctx.fillRect(0, 0, size, size);
        ctx.font = "bold 20px Arial";
        ctx.fillStyle = "#e8eaee";
        const words = sentence.split(/\s+/), head = [];
        for (const word of words) {
            const last = head.length ? `${head[head.length - 1]} ${word}` : word;
            if (head.length && ctx.measureText(last).width <= size - 24) head[head.length - 1] = last;
            else head.push(word);
        }
        head.slice(0, 4).forEach((line, i) => ctx.fillText(line, 12, 28 + i * 25));
        const top = 24 + Math.min(4, head.length) * 25;
        const cols = shown.length <= 2 ? Math.max(1, shown.length) : shown.length <= 4 ? 2 : 4;
        const rows = Math.max(1, Math.ceil(shown.length / cols));
        const w = size / cols, h = (size - top) / rows;
        shown.forEach((face, i) => {
            const x = (i % cols) * w, y = top + Math.floor(i / cols) * h;
            const caption = draw.captionText(schema, face.values, null, "");
            let text = face.title && face.title !== caption.text ? `${face.title}: ${caption.text}` : caption.text;
            if (face.based) { // the base is read off the user's photo when the graph runs
                const own = Object.values(face.values).some((v) => v);
                text = own ? `after a run: the AUs read off your photo, plus ${caption.text}` : "after a run: the AUs read off your photo";
            }
            const captionLines = draw.captionLines(ctx, text, w).slice(0, 2);
            const frame = draw.faceFrame(x, y, w, h - captionLines.length * draw.LINE - 10);
            draw.drawFace(ctx, frame, schema, face.values, null, { lines: captionLines, color: caption.color });
        });
        return { jpeg: canvas.toDataURL("image/jpeg", 0.9), faces: shown.length, sentence };
    },
};
return true;
