// Page-side helpers for tests/test_web_au_face.py (run with selenium's execute_script).
window.ffTest = {
    faceWidget: (node) => node.widgets.find((w) => w.name === "fineface_face"),
    face: (node) => window.ffTest.faceWidget(node)?.fineface,
    node: (id) => app.graph.getNodeById(id),
    auNodes: () => app.graph._nodes.filter((n) => n.type === "FineFaceAUVector").map((n) => n.id),
    add() {
        // removed one by one, not cleared: node ids keep counting up, and Vue nodes (1.35) reuse the
        // component of a node whose id comes back, with the old node's widgets bound to it
        for (const node of [...app.graph._nodes]) app.graph.remove(node);
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
        for (const id of this.auNodes()) this.faceWidget(this.node(id))?.triggerDraw?.(); // Vue nodes
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
    // A region's box in the pixels of the canvas the face is drawn on (the graph's, or its own with Vue nodes).
    box(id, region) {
        const face = this.face(this.node(id)), r = face.rects[region], m = face.transform;
        return { canvas: face.canvas, x: r.x * m.a + m.e, y: r.y * m.d + m.f, w: r.w * m.a, h: r.h * m.d };
    },
    // The canvas pixels of one region of the face (RGBA, as a plain array).
    pixels(id, region) {
        this.draw();
        const b = this.box(id, region);
        const data = b.canvas.getContext("2d").getImageData(Math.round(b.x), Math.round(b.y), Math.round(b.w), Math.round(b.h));
        return Array.from(data.data);
    },
    // Where a region's centre is in the page (CSS pixels), for the mouse.
    regionCentre(id, region) {
        const b = this.box(id, region), page = b.canvas.getBoundingClientRect(), k = page.width / b.canvas.width;
        return [Math.round(page.left + (b.x + b.w / 2) * k), Math.round(page.top + (b.y + b.h / 2) * k)];
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
