// Region search: on a picture marked img[data-region-of] (an artwork page's image, the query image
// after an upload), the visitor draws a box by pointer (mouse, pen, touch) or keyboard and searches
// by that part of the picture: the page goes to /?...&region=x,y,w,h&region_of=<id|upload>,
// coordinates relative to the picture (0..1, top left origin), so the result is a permalink.
// Without JavaScript the picture stays as it is. Events are delegated from `document` and the
// widget's state lives in its data attributes, so a picture htmx swaps in or restores from
// history works without setup of its own.
(function () {
  "use strict";

  var MIN_PIXELS = 16; // the smallest side, in pixels of the source image, the server accepts
  var STEP = 0.01; // one arrow key press: 1% of the picture
  var CLICK_SLOP = 4; // CSS px: a pointer that moved less drew nothing (a click or a tap)
  var DECIMALS = 10000; // 4 decimals in the URL
  var CORNERS = ["nw", "ne", "sw", "se"];
  var CENTRE = { x: 0.25, y: 0.25, w: 0.5, h: 0.5 }; // the box the keyboard starts from
  var counter = 0;
  var drag = null; // the pointer gesture in progress

  function make(tag, className, text) {
    var element = document.createElement(tag);
    if (className) element.className = className;
    if (text) element.textContent = text;
    return element;
  }

  function setUp(img) {
    if (img.closest(".region-widget")) return; // already set up (or restored from history)
    // Unique also beside markup htmx restores from an earlier page's history cache.
    var id = "region-" + Date.now().toString(36) + "-" + ++counter;
    // A picture inside a link: the overlay sits beside the link, never inside it.
    var target = img.parentElement && img.parentElement.tagName === "A" ? img.parentElement : img;
    var widget = make("div", "region-widget");
    var frame = make("span", "region-frame");
    var layer = make("span", "region-layer");
    layer.hidden = true;
    var box = make("span", "region-box");
    box.hidden = true;
    box.tabIndex = 0;
    box.setAttribute("role", "application");
    box.setAttribute("aria-roledescription", "region selector");
    box.setAttribute("aria-describedby", id + "-help");
    CORNERS.forEach(function (corner) {
      var handle = make("span", "region-handle region-handle-" + corner);
      handle.setAttribute("data-handle", corner);
      handle.setAttribute("aria-hidden", "true");
      box.appendChild(handle);
    });
    // The rest of the picture is dimmed by the shadow of a hole in a clipped sheet; the box's
    // handles sit outside the clip, so they stay whole at the picture's edges.
    var sheet = make("span", "region-sheet");
    sheet.appendChild(make("span", "region-hole"));
    layer.appendChild(sheet);
    layer.appendChild(box);

    var controls = make("div", "region-controls");
    var toggle = make("button", "region-toggle secondary", "Search a region");
    toggle.type = "button";
    toggle.setAttribute("aria-pressed", "false");
    toggle.setAttribute("aria-controls", id + "-panel");
    var panel = make("div", "region-panel");
    panel.id = id + "-panel";
    panel.hidden = true;
    var help = make(
      "p",
      "region-help",
      "Drag on the picture to draw a box; drag the box to move it, a corner to resize it. " +
        "With the keyboard: arrow keys move the box, Shift and arrow keys resize it, " +
        "Enter searches, Escape cancels."
    );
    help.id = id + "-help";
    var readout = make("p", "region-readout");
    readout.setAttribute("aria-live", "polite");
    var actions = make("p", "region-actions");
    var submit = make("button", "region-submit primary", "Search this region");
    submit.type = "button";
    var cancel = make("button", "region-cancel secondary", "Cancel");
    cancel.type = "button";
    actions.appendChild(submit);
    actions.appendChild(cancel);
    panel.appendChild(help);
    panel.appendChild(readout);
    panel.appendChild(actions);
    controls.appendChild(toggle);
    controls.appendChild(panel);

    target.parentNode.insertBefore(widget, target);
    frame.appendChild(target);
    frame.appendChild(layer);
    widget.appendChild(frame);
    widget.appendChild(controls);
    reset(widget);
  }

  function scan(root) {
    if (!root || !root.querySelectorAll) return;
    if (root.matches && root.matches("img[data-region-of]")) setUp(root);
    root.querySelectorAll("img[data-region-of]").forEach(setUp);
  }

  function parts(widget) {
    return {
      img: widget.querySelector("img[data-region-of]"),
      layer: widget.querySelector(".region-layer"),
      box: widget.querySelector(".region-box"),
      hole: widget.querySelector(".region-hole"),
      toggle: widget.querySelector(".region-toggle"),
      panel: widget.querySelector(".region-panel"),
      readout: widget.querySelector(".region-readout"),
      submit: widget.querySelector(".region-submit"),
    };
  }

  // --- the box: relative coordinates {x, y, w, h} --------------------------------------------

  function parse(text) {
    var values = (text || "").split(",").map(Number);
    if (values.length !== 4 || values.some(function (v) { return !isFinite(v); })) return null;
    return { x: values[0], y: values[1], w: values[2], h: values[3] };
  }

  function sourceSize(img) {
    var width = Number(img.getAttribute("data-source-width")) || img.naturalWidth || img.width;
    var height = Number(img.getAttribute("data-source-height")) || img.naturalHeight || img.height;
    return { width: width || 1, height: height || 1 };
  }

  function minimum(img) {
    var size = sourceSize(img);
    return { w: Math.min(1, MIN_PIXELS / size.width), h: Math.min(1, MIN_PIXELS / size.height) };
  }

  function clamp(value, low, high) {
    return Math.min(Math.max(value, low), high);
  }

  function fitted(box, min) {
    var w = clamp(box.w, min.w, 1);
    var h = clamp(box.h, min.h, 1);
    return { x: clamp(box.x, 0, 1 - w), y: clamp(box.y, 0, 1 - h), w: w, h: h };
  }

  // In ten-thousandths, so that the rounded box still lies inside the picture and keeps its
  // minimum size (the server checks both on the rounded values).
  function rounded(box, min) {
    var w = clamp(Math.round(box.w * DECIMALS), Math.ceil(min.w * DECIMALS), DECIMALS);
    var h = clamp(Math.round(box.h * DECIMALS), Math.ceil(min.h * DECIMALS), DECIMALS);
    var x = clamp(Math.round(box.x * DECIMALS), 0, DECIMALS - w);
    var y = clamp(Math.round(box.y * DECIMALS), 0, DECIMALS - h);
    return [x, y, w, h].map(function (v) { return String(v / DECIMALS); }).join(",");
  }

  function current(widget) {
    return parse(widget.getAttribute("data-box"));
  }

  function percent(value) {
    return Math.round(value * 100) + "%";
  }

  function describe(box) {
    return (
      percent(box.x) + " from the left, " + percent(box.y) + " from the top, " +
      percent(box.w) + " wide, " + percent(box.h) + " tall"
    );
  }

  function store(widget, box, announce) {
    var p = parts(widget);
    if (box) box = fitted(box, minimum(p.img));
    widget.setAttribute("data-box", box ? [box.x, box.y, box.w, box.h].join(",") : "");
    p.submit.disabled = !box;
    p.box.setAttribute("aria-label", box ? "Region to search: " + describe(box) : "Region to search");
    if (announce) p.readout.textContent = box ? "Region: " + describe(box) + "." : "";
    render(widget);
  }

  // Positions exist only while the selection is open: a page htmx keeps for the back button
  // must hold no style attributes (the Content-Security-Policy refuses inline styles).
  function render(widget) {
    var p = parts(widget);
    var box = current(widget);
    if (widget.getAttribute("data-open") !== "true") {
      [p.layer, p.box, p.hole].forEach(function (element) { element.removeAttribute("style"); });
      return;
    }
    var frame = p.layer.parentElement.getBoundingClientRect();
    var picture = p.img.getBoundingClientRect();
    p.layer.style.left = picture.left - frame.left + "px";
    p.layer.style.top = picture.top - frame.top + "px";
    p.layer.style.width = picture.width + "px";
    p.layer.style.height = picture.height + "px";
    p.box.hidden = p.hole.hidden = !box;
    if (box) place(p, box);
  }

  function place(p, box) {
    [p.box, p.hole].forEach(function (element) {
      element.style.left = box.x * 100 + "%";
      element.style.top = box.y * 100 + "%";
      element.style.width = box.w * 100 + "%";
      element.style.height = box.h * 100 + "%";
    });
  }

  function reset(widget) {
    var img = parts(widget).img;
    store(widget, parse(img.getAttribute("data-region")), false);
  }

  // --- opening, closing, searching -----------------------------------------------------------

  // byKeyboard: a box appears at once, focused; scroll: the whole picture is brought into view.
  function open(widget, byKeyboard, scroll) {
    var p = parts(widget);
    widget.setAttribute("data-open", "true");
    p.toggle.setAttribute("aria-pressed", "true");
    p.layer.hidden = false;
    p.panel.hidden = false;
    if (!current(widget) && byKeyboard) store(widget, CENTRE, false);
    // The button is below the picture: a tall picture's top may be out of view.
    if (scroll) p.layer.parentElement.scrollIntoView({ block: "nearest", inline: "nearest" });
    render(widget);
    var box = current(widget);
    p.readout.textContent = box ? "Region: " + describe(box) + "." : "Drag on the picture to draw a box.";
    if (byKeyboard && box) p.box.focus({ preventScroll: true });
  }

  function close(widget, focusToggle) {
    var p = parts(widget);
    widget.removeAttribute("data-open");
    p.toggle.setAttribute("aria-pressed", "false");
    p.layer.hidden = true;
    p.box.hidden = p.hole.hidden = true;
    p.panel.hidden = true;
    p.readout.textContent = "";
    reset(widget);
    if (focusToggle) p.toggle.focus();
  }

  // The search the region joins: the page's own (data-region-search), else the search on
  // screen (on "/"), else a new one; its paging and any earlier region are dropped.
  function searchUrl(widget) {
    var img = parts(widget).img;
    var box = current(widget);
    var base = img.getAttribute("data-region-search");
    if (!base) base = location.pathname === "/" ? location.pathname + location.search : "/";
    var url = new URL(base, location.href);
    ["offset", "shown", "region", "region_of"].forEach(function (name) {
      url.searchParams.delete(name);
    });
    var kept = url.searchParams.toString();
    return (
      url.pathname + "?" + (kept ? kept + "&" : "") +
      "region=" + rounded(box, minimum(img)) +
      "&region_of=" + encodeURIComponent(img.getAttribute("data-region-of"))
    );
  }

  function search(widget) {
    if (!current(widget)) return;
    window.location.assign(searchUrl(widget));
  }

  // --- pointer: draw, move, resize by a corner -------------------------------------------------

  function pointAt(layer, event) {
    var rect = layer.getBoundingClientRect();
    return {
      x: clamp((event.clientX - rect.left) / (rect.width || 1), 0, 1),
      y: clamp((event.clientY - rect.top) / (rect.height || 1), 0, 1),
      clientX: event.clientX,
      clientY: event.clientY,
    };
  }

  function dragged(start, event) {
    return Math.abs(event.clientX - start.clientX) >= CLICK_SLOP ||
      Math.abs(event.clientY - start.clientY) >= CLICK_SLOP;
  }

  function boxDuring(gesture, point) {
    var from = gesture.from;
    var start = gesture.start;
    var min = gesture.min;
    if (gesture.mode === "draw") {
      return {
        x: Math.min(start.x, point.x), y: Math.min(start.y, point.y),
        w: Math.abs(point.x - start.x), h: Math.abs(point.y - start.y),
      };
    }
    if (gesture.mode === "move") {
      return {
        x: clamp(from.x + point.x - start.x, 0, 1 - from.w),
        y: clamp(from.y + point.y - start.y, 0, 1 - from.h),
        w: from.w, h: from.h,
      };
    }
    // A corner: the opposite one stays put; the box never turns inside out.
    var left = from.x, top = from.y, right = from.x + from.w, bottom = from.y + from.h;
    if (gesture.mode.charAt(0) === "n") top = clamp(point.y, 0, bottom - min.h);
    else bottom = clamp(point.y, top + min.h, 1);
    if (gesture.mode.charAt(1) === "w") left = clamp(point.x, 0, right - min.w);
    else right = clamp(point.x, left + min.w, 1);
    return { x: left, y: top, w: right - left, h: bottom - top };
  }

  document.addEventListener("pointerdown", function (event) {
    var layer = event.target.closest && event.target.closest(".region-layer");
    if (!layer || drag || (event.pointerType === "mouse" && event.button !== 0)) return;
    var widget = layer.closest(".region-widget");
    var handle = event.target.closest("[data-handle]");
    var inBox = event.target.closest(".region-box");
    var from = current(widget);
    var mode = handle && from ? handle.getAttribute("data-handle") : inBox && from ? "move" : "draw";
    event.preventDefault(); // no text selection, no native image drag
    layer.setPointerCapture(event.pointerId);
    drag = {
      widget: widget, layer: layer, pointerId: event.pointerId, mode: mode, from: from,
      start: pointAt(layer, event), min: minimum(parts(widget).img), moved: false,
    };
  });

  document.addEventListener("pointermove", function (event) {
    if (!drag || event.pointerId !== drag.pointerId) return;
    if (!drag.moved && !dragged(drag.start, event)) return;
    drag.moved = true;
    var box = boxDuring(drag, pointAt(drag.layer, event));
    var p = parts(drag.widget);
    // Drawn freely (possibly under the minimum) until released; stored when the gesture ends.
    p.box.hidden = p.hole.hidden = false;
    place(p, box);
  });

  function endDrag(event, keep) {
    if (!drag || event.pointerId !== drag.pointerId) return;
    var gesture = drag;
    drag = null;
    if (gesture.layer.hasPointerCapture(event.pointerId)) {
      gesture.layer.releasePointerCapture(event.pointerId);
    }
    if (keep && gesture.moved) {
      store(gesture.widget, boxDuring(gesture, pointAt(gesture.layer, event)), true);
      parts(gesture.widget).box.focus({ preventScroll: true });
    } else {
      render(gesture.widget); // a click or a tap: the box stays as it was
    }
  }

  document.addEventListener("pointerup", function (event) { endDrag(event, true); });
  document.addEventListener("pointercancel", function (event) { endDrag(event, false); });

  // --- keyboard and buttons -----------------------------------------------------------------------

  var MOVES = {
    ArrowLeft: [-1, 0],
    ArrowRight: [1, 0],
    ArrowUp: [0, -1],
    ArrowDown: [0, 1],
  };

  document.addEventListener("keydown", function (event) {
    var widget = event.target.closest && event.target.closest(".region-widget[data-open]");
    if (!widget) return;
    if (event.key === "Escape") {
      event.preventDefault();
      close(widget, true);
      return;
    }
    var box = current(widget);
    if (!box && MOVES[event.key] && event.target.classList.contains("region-toggle")) {
      // Opened by a click with nothing drawn yet: an arrow key brings the keyboard's box.
      event.preventDefault();
      store(widget, CENTRE, true);
      parts(widget).box.focus({ preventScroll: true });
      return;
    }
    if (!event.target.classList.contains("region-box")) return;
    if (event.key === "Enter") {
      event.preventDefault();
      search(widget);
      return;
    }
    var move = MOVES[event.key];
    if (!move || !box || event.altKey || event.ctrlKey || event.metaKey) return;
    event.preventDefault(); // the page does not scroll
    if (event.shiftKey) {
      // Shift resizes from the bottom right corner: right/down grow, left/up shrink.
      box.w += move[0] * STEP;
      box.h += move[1] * STEP;
    } else {
      box.x += move[0] * STEP;
      box.y += move[1] * STEP;
    }
    store(widget, box, true);
  });

  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest(".region-widget button");
    if (!button) return;
    var widget = button.closest(".region-widget");
    if (button.classList.contains("region-toggle")) {
      if (widget.getAttribute("data-open") === "true") close(widget, false);
      // detail 0: activated by the keyboard (Enter or Space), so a box to move appears at once
      else open(widget, event.detail === 0, true);
    } else if (button.classList.contains("region-cancel")) {
      close(widget, true);
    } else if (button.classList.contains("region-submit")) {
      search(widget);
    }
  });

  // A picture's box follows the picture when the window changes size or the picture loads late.
  function renderOpen() {
    document.querySelectorAll(".region-widget[data-open]").forEach(render);
  }
  window.addEventListener("resize", renderOpen);
  document.addEventListener("load", function (event) {
    if (event.target.matches && event.target.matches("img[data-region-of]")) renderOpen();
  }, true);

  // htmx copies the page for the back button right after this event: the copy holds each open
  // selection closed, without inline styles; the page on screen reopens it at once, as it was.
  document.addEventListener("htmx:beforeHistorySave", function () {
    document.querySelectorAll(".region-widget[data-open]").forEach(function (widget) {
      var box = parse(widget.getAttribute("data-box"));
      var focused = widget.contains(document.activeElement) ? document.activeElement : null;
      close(widget, false);
      queueMicrotask(function () {
        if (!widget.isConnected) return;
        store(widget, box, false);
        open(widget, false, false);
        if (focused && focused.isConnected) focused.focus({ preventScroll: true });
      });
    });
  });

  document.addEventListener("htmx:load", function (event) { scan(event.target); });
  scan(document);
})();
