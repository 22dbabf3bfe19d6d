// The search page's small enhancements over plain forms and links (no inline scripts: CSP).
// Everything is delegated from `document`, because HTMX replaces the search area on each search.
(function () {
  "use strict";

  document.documentElement.classList.add("js");

  var filtersOpen = null; // the visitor's choice for the filters panel, kept across swaps
  var focusQueryAfterSwap = false;

  function uploadInput() {
    return document.getElementById("image");
  }

  function submitImage(file) {
    var input = uploadInput();
    if (!input || !file) return;
    var transfer = new DataTransfer();
    transfer.items.add(file);
    input.files = transfer.files;
    input.form.requestSubmit(); // HTMX takes the submit event and posts in the background
  }

  function firstImage(list) {
    if (!list) return null;
    for (var i = 0; i < list.length; i++) {
      if (list[i].type && list[i].type.indexOf("image/") === 0) return list[i];
    }
    return list.length ? list[0] : null; // let the server explain what is wrong with it
  }

  // File picker: search as soon as a file is chosen.
  document.addEventListener("change", function (event) {
    if (event.target && event.target.id === "image" && event.target.files.length) {
      event.target.form.requestSubmit();
    }
  });

  // Drag and drop, anywhere on the page.
  function hasFiles(event) {
    return event.dataTransfer && Array.prototype.indexOf.call(event.dataTransfer.types, "Files") >= 0;
  }
  function setDragging(on) {
    var zone = document.getElementById("drop-zone");
    if (zone) zone.classList.toggle("dragging", on);
    document.body.classList.toggle("dragging", on);
  }
  document.addEventListener("dragover", function (event) {
    if (!hasFiles(event) || !uploadInput()) return;
    event.preventDefault();
    event.dataTransfer.dropEffect = "copy";
    setDragging(true);
  });
  document.addEventListener("dragleave", function (event) {
    if (event.relatedTarget === null) setDragging(false);
  });
  document.addEventListener("drop", function (event) {
    if (!hasFiles(event) || !uploadInput()) return;
    event.preventDefault();
    setDragging(false);
    submitImage(firstImage(event.dataTransfer.files));
  });

  // Paste an image (a screenshot, a copied picture) anywhere on the search page.
  document.addEventListener("paste", function (event) {
    var data = event.clipboardData;
    if (!data || !data.files || !data.files.length || !uploadInput()) return;
    var file = firstImage(data.files);
    if (!file || file.type.indexOf("image/") !== 0) return; // pasted text stays text
    event.preventDefault();
    submitImage(file);
  });

  // Remember whether the visitor opened or closed the filters, so a swap does not undo it.
  document.addEventListener(
    "toggle",
    function (event) {
      if (event.target && event.target.id === "filters") filtersOpen = event.target.open;
    },
    true
  );

  document.addEventListener("htmx:beforeRequest", function (event) {
    var elt = event.detail.elt;
    focusQueryAfterSwap = !!(elt && elt.matches && elt.matches(".find-similar, .chip-remove"));
  });

  document.addEventListener("htmx:afterSwap", function () {
    var filters = document.getElementById("filters");
    if (filters && filtersOpen !== null) filters.open = filtersOpen;
    if (focusQueryAfterSwap) {
      // The artwork is now a chip: put the cursor where the visitor adds words to it.
      var q = document.getElementById("q");
      if (q) q.focus({ preventScroll: true });
      focusQueryAfterSwap = false;
    }
  });

  document.addEventListener("htmx:afterRequest", function (event) {
    // A refused file stays chosen otherwise, and choosing it again would not fire "change".
    var input = uploadInput();
    if (input && event.detail.elt && event.detail.elt.id === "upload-form") input.value = "";
  });

  // HTMX snapshots the page for the back button from its HTML: write what was typed into the
  // attributes so the snapshot shows the fields as they were.
  document.addEventListener("htmx:beforeHistorySave", function () {
    document.querySelectorAll("#search-form input[name]").forEach(function (input) {
      if (input.type !== "file") input.setAttribute("value", input.value);
    });
    document.querySelectorAll("#search-form select").forEach(function (select) {
      Array.prototype.forEach.call(select.options, function (option) {
        option.toggleAttribute("selected", option.selected);
      });
    });
    var filters = document.getElementById("filters");
    if (filters) filters.toggleAttribute("open", filters.open);
  });
})();
