// A widget the pack draws on a node itself (the face, the text after a run, the download status): no input of the
// node, so it is left out of the saved workflow and the prompt, and the saved widget values stay as they were.

/** The widget ``name`` (its type too) with the caller's fields and methods (computeSize, draw, ...). */
export function ownWidget(name, fields) {
    return { name, type: name, value: null, serialize: false, options: { serialize: false }, ...fields };
}
