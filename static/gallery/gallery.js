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

  var focusChipAfterSwap = null; // the artwork just marked "less like this"
  var focusRefAfterSettle = null; // the artwork just added to (or taken from) the references

  document.addEventListener("htmx:beforeRequest", function (event) {
    var elt = event.detail.elt;
    focusQueryAfterSwap = !!(
      elt &&
      elt.matches &&
      elt.matches(".find-similar, .chip-remove, .tray-remove, .chip-action")
    );
    var card = elt && elt.matches && elt.matches(".less-like:not(.marked)") ? elt.closest(".card") : null;
    focusChipAfterSwap = card ? card.dataset.artworkId : null;
    var toggled = elt && elt.matches && elt.matches(".ref-toggle") ? elt.closest(".card") : null;
    focusRefAfterSettle = toggled ? toggled.dataset.artworkId : null;
  });

  // The toggle keeps the focus when its card is still listed (htmx refocuses the same id);
  // a reference's own search leaves it out, and then its place in the tray takes the focus.
  document.addEventListener("htmx:afterSettle", function () {
    if (!focusRefAfterSettle) return;
    var id = focusRefAfterSettle;
    focusRefAfterSettle = null;
    var toggle = document.getElementById("ref-" + id);
    var inTray = document.querySelector('.tray-item[data-artwork="' + id + '"] .tray-link');
    var target = toggle || inTray || document.getElementById("q");
    if (target && document.activeElement !== target) target.focus({ preventScroll: true });
  });

  document.addEventListener("htmx:afterSwap", function () {
    var filters = document.getElementById("filters");
    if (filters && filtersOpen !== null) filters.open = filtersOpen;
    if (focusChipAfterSwap) {
      // The card may have moved far down or left the list: the focus goes to its new chip,
      // whose button takes the mark back.
      var chip = document.querySelector('.chip-unlike[data-artwork="' + focusChipAfterSwap + '"] .chip-remove');
      if (chip) chip.focus({ preventScroll: true });
      focusChipAfterSwap = null;
    } else if (focusQueryAfterSwap) {
      // The artwork is now a chip: put the cursor where the visitor adds words to it.
      var q = document.getElementById("q");
      if (q) q.focus({ preventScroll: true });
    }
    focusQueryAfterSwap = false;
  });

  // A weight control says its value at once; the search follows when the control rests (its
  // hx-trigger waits), and the swap gives the focus back to the control of the same id.
  document.addEventListener("input", function (event) {
    var target = event.target;
    if (!target || !target.matches || !target.matches('.weights input[type="range"]')) return;
    var output = document.getElementById(target.id + "-value");
    if (output) output.textContent = "× " + Number(target.value);
  });

  document.addEventListener("htmx:afterRequest", function (event) {
    // A refused file stays chosen otherwise, and choosing it again would not fire "change".
    var input = uploadInput();
    if (input && event.detail.elt && event.detail.elt.id === "upload-form") input.value = "";
  });

  // --- Search state: history that tells the truth, filters that wait for the typist, the
  // visitor's place. -------------------------------------------------------------------------

  function paramsOf(path) {
    var at = path.indexOf("?");
    return new URLSearchParams(at < 0 ? "" : path.slice(at + 1));
  }

  // HTMX snapshots the page for the back button from its HTML when the *next* search's answer
  // arrives, by which time the fields hold what was typed for that next search. The snapshot is
  // of the entry `path`: write the fields as that URL names them into the attributes (what the
  // snapshot records), and leave the live values, which the visitor still sees, as they are.
  function snapshotFieldsAs(path) {
    var params = paramsOf(path);
    document.querySelectorAll("#search-form input[name]").forEach(function (input) {
      if (input.type === "file" || input.type === "hidden") return;
      var live = input.value;
      input.setAttribute("value", params.get(input.name) || "");
      input.value = live;
    });
    document.querySelectorAll("#search-form select[name]").forEach(function (select) {
      var live = select.selectedIndex;
      var wanted = (params.get(select.name) || "").toLowerCase();
      Array.prototype.forEach.call(select.options, function (option) {
        option.toggleAttribute("selected", option.value.toLowerCase() === wanted);
      });
      select.selectedIndex = live;
    });
    var filters = document.getElementById("filters");
    if (filters) filters.toggleAttribute("open", filters.open);
  }

  document.addEventListener("htmx:beforeHistorySave", function (event) {
    snapshotFieldsAs(event.detail.path || location.pathname + location.search);
  });

  // Restored from the back-forward cache, the page's scripts resume where they were, but htmx's
  // note of the current entry (kept in sessionStorage, shared with the pages visited since) may
  // name another page: put it back, so that the next snapshot is filed under this URL.
  window.addEventListener("pageshow", function (event) {
    if (event.persisted) {
      try {
        sessionStorage.setItem("htmx-current-path-for-history", location.pathname + location.search);
      } catch (error) {
        // storage refused (private mode): htmx then falls back to location itself
      }
    }
  });

  // Filters search when a value is committed: a text field when it is left or Enter is pressed
  // (the browser's "change"), a select when chosen from its list. Arrow keys on a closed select
  // change its value at each press; such a change waits until the select is left or Enter.
  // A commit waits a moment for a submit that may follow it (leaving a filter for the search
  // box and pressing Enter), so that one search is sent, not two.
  var SELECT_KEYS = /^(Arrow(Up|Down|Left|Right)|Home|End|Page(Up|Down)|.)$/;
  var selectKeyedAt = 0;
  var pendingSelect = null;
  var commitTimer = null;

  function commitFilters(form) {
    pendingSelect = null;
    window.clearTimeout(commitTimer);
    commitTimer = window.setTimeout(function () {
      if (form && window.htmx) window.htmx.trigger(form, "filterscommit");
    }, 150);
  }

  document.addEventListener(
    "submit",
    function (event) {
      if (event.target && event.target.id === "search-form") window.clearTimeout(commitTimer);
    },
    true
  );

  document.addEventListener(
    "keydown",
    function (event) {
      var target = event.target;
      if (!target || target.tagName !== "SELECT" || !target.closest("#filters")) return;
      if (event.key === "Enter" && pendingSelect === target) {
        event.preventDefault();
        commitFilters(target.form);
        return;
      }
      if (SELECT_KEYS.test(event.key)) selectKeyedAt = Date.now();
    },
    true
  );

  document.addEventListener("change", function (event) {
    var target = event.target;
    if (!target || !target.closest || !target.closest("#filters")) return;
    if (target.tagName === "SELECT" && Date.now() - selectKeyedAt < 500) {
      pendingSelect = target;
      return;
    }
    commitFilters(target.form);
  });

  document.addEventListener("focusout", function (event) {
    if (pendingSelect && event.target === pendingSelect) commitFilters(pendingSelect.form);
  });

  // A field whose message (beside it) is not empty is marked invalid for assistive technology;
  // the messages arrive with the results, the fields themselves are not replaced.
  function markInvalidFields() {
    document.querySelectorAll("#search-form .field-error[data-field]").forEach(function (message) {
      var field = document.querySelector('#search-form [aria-describedby="' + message.id + '"]');
      if (!field) return;
      if (message.textContent.trim()) field.setAttribute("aria-invalid", "true");
      else field.removeAttribute("aria-invalid");
    });
  }

  // "Load more": the first new result takes the focus (a keyboard visitor carries on reading
  // there instead of starting again from the top of the page).
  var cardsBeforeMore = -1;

  document.addEventListener("htmx:beforeRequest", function (event) {
    var elt = event.detail.elt;
    cardsBeforeMore =
      elt && elt.closest && elt.closest("#more")
        ? document.querySelectorAll("#result-list > .card").length
        : -1;
  });

  document.addEventListener("htmx:afterSettle", function (event) {
    markInvalidFields();
    if (cardsBeforeMore < 0 || !event.detail.target || event.detail.target.id !== "result-list") {
      return;
    }
    var first = document.querySelectorAll("#result-list > .card")[cardsBeforeMore];
    cardsBeforeMore = -1;
    var link = first && first.querySelector(".card-link");
    if (link) link.focus({ preventScroll: true });
  });
})();
