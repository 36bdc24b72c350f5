// Canvas widgets as Vue nodes draw them (front end 1.3x "Nodes 2.0"): the widget gets a canvas of its own,
// positioned absolutely (and 13 px up, over the widget above) inside an empty holder, so the node's frame
// leaves no room for it and the drawing spills out below the node. The holder is given the drawing's height
// and the canvas its place, and the frame grows around it.

/** Called from a widget's draw: on a canvas other than the graph's, make its holder as tall as the drawing. */
export function holdRoom(ctx, graphCanvas, height) {
    const canvas = ctx.canvas;
    if (canvas === graphCanvas || !canvas.parentElement) return;
    const want = `${Math.ceil(height + 2)}px`;
    if (canvas.style.marginTop !== "0px") canvas.style.marginTop = "0px";
    const holder = canvas.parentElement;
    if (holder.style.height !== want) holder.style.height = want;
}
