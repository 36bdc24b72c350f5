// Page-side helpers for tests/test_web_au_face.py (run with selenium's execute_script).
window.ffTest = {
    faceWidget: (node) => node.widgets.find((w) => w.name === "fineface_face"),
    face: (node) => window.ffTest.faceWidget(node)?.fineface,
    node: (id) => app.graph.getNodeById(id),
    auNodes: () => app.graph._nodes.filter((n) => n.type === "FineFaceAUVector").map((n) => n.id),
    add() {
        app.graph.clear();
        const node = LiteGraph.createNode("FineFaceAUVector");
        node.pos = [100, 100];
        app.graph.add(node);
        return node.id;
    },
    // Put the node at a known place at scale 1 and draw it now.
    show(id, x = 40, y = 40) {
        const node = this.node(id);
        app.canvas.ds.scale = 1;
        app.canvas.ds.offset = [x - node.pos[0], y - node.pos[1]];
        this.draw();
    },
    draw() {
        app.canvas.setDirty(true, true);
        app.canvas.draw(true, true);
    },
    set(id, name, value) {
        const w = this.node(id).widgets.find((w) => w.name === name);
        w.value = value;
        w.callback?.(value, app.canvas, this.node(id));
        this.draw();
    },
    values(id) {
        return this.node(id).widgets.filter((w) => w.name !== "fineface_face").map((w) => w.value);
    },
    // The canvas pixels of one region of the face (RGBA, as a plain array).
    pixels(id, region) {
        this.draw();
        const node = this.node(id);
        const r = this.face(node).rects[region];
        const dpr = window.devicePixelRatio || 1;
        const [x, y] = app.canvas.ds.convertOffsetToCanvas([node.pos[0] + r.x, node.pos[1] + r.y]);
        const s = app.canvas.ds.scale * dpr;
        const ctx = app.canvas.canvas.getContext("2d");
        return Array.from(ctx.getImageData(Math.round(x * dpr), Math.round(y * dpr), Math.round(r.w * s), Math.round(r.h * s)).data);
    },
    // Where a region's centre is in the page (CSS pixels), for the mouse.
    regionCentre(id, region) {
        const node = this.node(id);
        const r = this.face(node).rects[region];
        const [x, y] = app.canvas.ds.convertOffsetToCanvas([node.pos[0] + r.x + r.w / 2, node.pos[1] + r.y + r.h / 2]);
        const box = app.canvas.canvas.getBoundingClientRect();
        return [Math.round(box.left + x), Math.round(box.top + y)];
    },
    // Redraw the node n times with AU12 moving; the face widget's own draw times (ms).
    timeRedraws(id, n) {
        const face = this.face(this.node(id));
        face.drawMs.length = 0;
        for (let i = 0; i < n; i++) this.set(id, "AU12", (i % 11) - 2);
        return face.drawMs.slice();
    },
};
return true;
