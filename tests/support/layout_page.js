// Page-side helpers for tests/test_web_workflow_layout.py: the node boxes of the loaded graph, as the front end
// lays them out, and what the page shows at points of the screen.
window.ffLayout = {
    // Every node's box in page pixels: its element's where nodes are Vue components, else the canvas's
    // bounding box (title included) through the view's offset and scale.
    boxes() {
        const ds = app.canvas.ds, page = app.canvas.canvas.getBoundingClientRect();
        const k = page.width / app.canvas.canvas.width * (window.devicePixelRatio || 1);
        return app.graph._nodes.map((node) => {
            const el = document.querySelector(`[data-node-id='${node.id}']`);
            let box;
            if (el) {
                const r = el.getBoundingClientRect();
                box = [r.left, r.top, r.width, r.height];
            } else {
                const b = new Float32Array(4);
                node.getBounding ? node.getBounding(b) : b.set(node.boundingRect ?? [node.pos[0], node.pos[1] - LiteGraph.NODE_TITLE_HEIGHT, node.size[0], node.size[1] + LiteGraph.NODE_TITLE_HEIGHT]);
                box = [page.left + (b[0] + ds.offset[0]) * ds.scale * k, page.top + (b[1] + ds.offset[1]) * ds.scale * k,
                       b[2] * ds.scale * k, b[3] * ds.scale * k];
            }
            return { id: node.id, title: node.title, type: node.type, box };
        });
    },
    // For each point [x, y] (page pixels): whether the page shows the node there (the graph's canvas, a widget
    // of the node's own, or the node's element), not a bar, a menu or another node.
    visible(id, points) {
        const node = app.graph.getNodeById(id);
        const el = document.querySelector(`[data-node-id='${id}']`);
        const shows = (hit) => (el ? el.contains(hit)
            : hit === app.canvas.canvas || !!node.widgets?.some((w) => w.element?.contains(hit) || w.inputEl?.contains(hit)));
        // true, or what is there instead
        return points.map(([x, y]) => {
            const hit = document.elementFromPoint(x, y);
            return !!hit && shows(hit) || (hit ? `${hit.tagName}.${hit.className}`.slice(0, 80) : "nothing");
        });
    },
    // Draw now; the AU Vector faces' answers are in when every face's caption is for its current state.
    settled() {
        app.canvas.setDirty(true, true);
        app.canvas.draw(true, true);
        for (const node of app.graph._nodes) {
            const face = node.widgets?.find((w) => w.name === "fineface_face");
            face?.triggerDraw?.();
            if (face && face.fineface.answeredKey !== face.fineface.key) return false;
        }
        return true;
    },
};
// Page-side helpers for tests/test_web_labels_whole.py: what a fresh node shows of its input names and values.
window.ffLabels = {
    // A fresh node of ``type`` at its default size, alone on the graph, at view scale 1 and offset 0.
    fresh(type) {
        app.graph.clear();
        const node = LiteGraph.createNode(type);
        node.pos = [60, 80];
        app.graph.add(node);
        app.canvas.ds.scale = 1;
        app.canvas.ds.offset[0] = 0;
        app.canvas.ds.offset[1] = 0;
        app.canvas.setDirty(true, true);
        return node.id;
    },
    // The texts the graph's canvas draws for one frame (fillText caught), in canvas pixels: each with its left and
    // right edge as drawn, baseline, and whether it was squeezed to fit (fillText's maxWidth) -- and the node's
    // box and widget rows.
    canvasTexts(id) {
        const node = app.graph.getNodeById(id);
        const proto = CanvasRenderingContext2D.prototype, fill = proto.fillText, texts = [];
        proto.fillText = function (text, x, y, maxWidth) {
            if (this.canvas === app.canvas.canvas && String(text).trim()) {
                const m = this.getTransform(), w = this.measureText(String(text)).width, a = this.textAlign;
                const squeezed = maxWidth !== undefined && w > maxWidth + 0.5, drawn = squeezed ? maxWidth : w;
                const left = x - (a === "right" || a === "end" ? drawn : a === "center" ? drawn / 2 : 0);
                texts.push({ text: String(text), left: m.a * left + m.e, right: m.a * (left + drawn) + m.e,
                             y: m.d * y + m.f, squeezed });
            }
            return fill.apply(this, arguments);
        };
        try {
            app.canvas.setDirty(true, true);
            app.canvas.draw(true, true);
        } finally {
            proto.fillText = fill;
        }
        const rows = (node.widgets ?? []).map((w) => ({
            name: w.name, label: w.label ?? w.name, y: node.pos[1] + (w.y ?? w.last_y ?? 0),
            h: w.computeSize?.(node.size[0])?.[1] ?? LiteGraph.NODE_WIDGET_HEIGHT }));
        return { box: [node.pos[0], node.pos[1], node.size[0], node.size[1]], rows, texts };
    },
    // As a Vue node: every element with text of its own (the widgets' labels; not the title, nor a control's value)
    // whose text runs past the element or past an ancestor inside the node that clips it; and every canvas not
    // inside the node's box.
    vueCuts(id) {
        const el = document.querySelector(`[data-node-id='${id}']`);
        if (!el) return null;
        const box = el.getBoundingClientRect(), cuts = [], outside = [];
        const inside = (r, c) => r.left >= c.left - 1 && r.right <= c.right + 1 && r.top >= c.top - 1 && r.bottom <= c.bottom + 1;
        const title = app.graph.getNodeById(id)?.title;
        for (const item of el.querySelectorAll("*")) {
            const own = [...item.childNodes].filter((n) => n.nodeType === 3 && n.textContent.trim());
            if (!own.length || !item.getClientRects().length) continue;
            // the labels, not the title bar's text nor a value shown in a control (a select's chosen item)
            if (item.textContent.trim() === title || item.closest("[class*='p-select'], button, input, textarea")) continue;
            const range = document.createRange();
            range.setStartBefore(own[0]);
            range.setEndAfter(own[own.length - 1]);
            const r = range.getBoundingClientRect();
            if (!r.width) continue;
            const text = own.map((n) => n.textContent.trim()).join(" ");
            if (item.scrollWidth > item.clientWidth + 1 && getComputedStyle(item).overflowX !== "visible")
                cuts.push({ text, why: `scrollWidth ${item.scrollWidth} > clientWidth ${item.clientWidth}` });
            for (let up = item; up && up !== el.parentElement; up = up.parentElement) {
                const s = getComputedStyle(up);
                if ((s.overflowX !== "visible" || up === el) && !inside(r, up.getBoundingClientRect())) {
                    const c = up.getBoundingClientRect();
                    cuts.push({ text, why: `text ${Math.round(r.left)}..${Math.round(r.right)} outside ${up.tagName}.${String(up.className).slice(0, 60)} ${Math.round(c.left)}..${Math.round(c.right)}` });
                    break;
                }
            }
        }
        for (const canvas of el.querySelectorAll("canvas")) {
            const r = canvas.getBoundingClientRect();
            if (r.width && r.height && !inside(r, box))
                outside.push([r.left, r.top, r.width, r.height].map(Math.round));
        }
        return { box: [box.left, box.top, box.width, box.height].map(Math.round), cuts, outside };
    },
};
return true;
