// What a background request is doing, and what went wrong when it failed: one place for both.
// HTMX swaps nothing for an error answer (4xx, 5xx) and says nothing when the network fails, so
// without this a failed search, "Load more" or upload would simply leave the page unchanged.
(function () {
  "use strict";

  var SLOW_MS = 2500; // after this long, say more than "Searching…"
  var READINESS_URL = "/healthz/ready"; // says whether this process's search model is loaded
  var MAX_SERVER_TEXT = 300;

  var slowTimer = null;

  // --- where a request belongs --------------------------------------------------------------

  function zoneOf(elt) {
    if (elt && elt.closest && elt.closest("#upload-form")) return "upload";
    if (elt && elt.closest && elt.closest("#more, #result-list")) return "more";
    return "search";
  }

  var WHAT_FAILED = {
    search: "The search did not run.",
    more: "More results could not be loaded.",
    upload: "Your image was not sent.",
    history: "This earlier search could not be loaded.",
  };

  // --- the message ------------------------------------------------------------------------------

  function removeProblem() {
    document.querySelectorAll(".request-problem").forEach(function (node) {
      node.remove();
    });
  }

  function placeProblem(box, zone) {
    var anchor;
    if (zone === "upload" && (anchor = document.getElementById("upload-form"))) {
      anchor.appendChild(box);
    } else if (zone === "more" && (anchor = document.getElementById("more"))) {
      anchor.insertBefore(box, anchor.firstChild);
    } else if ((anchor = document.querySelector("#results .results-head"))) {
      anchor.insertAdjacentElement("afterend", box);
    } else if ((anchor = document.getElementById("main"))) {
      anchor.insertBefore(box, anchor.firstChild);
    }
  }

  function showProblem(options) {
    removeProblem();
    var box = document.createElement("div");
    box.className = "message error request-problem";
    box.setAttribute("role", "alert");
    var text = document.createElement("p");
    text.textContent = WHAT_FAILED[options.zone] + " " + options.reason;
    box.appendChild(text);
    var button = document.createElement("button");
    button.type = "button";
    button.className = "secondary retry";
    button.textContent = options.actionLabel || "Try again";
    button.addEventListener("click", function () {
      removeProblem();
      options.action();
    });
    box.appendChild(button);
    placeProblem(box, options.zone);
  }

  // --- what the server said -----------------------------------------------------------------

  // The server's own words: the sentence of its error page (templates/error.html) or the
  // "detail" of a JSON error, never the markup.
  function serverText(xhr) {
    var body = (xhr && xhr.responseText) || "";
    var type = (xhr && xhr.getResponseHeader("Content-Type")) || "";
    var text = "";
    try {
      if (type.indexOf("json") >= 0) {
        text = String(JSON.parse(body).detail || "");
      } else if (type.indexOf("html") >= 0 && body.indexOf('class="error-page"') >= 0) {
        // Only our own error page is parsed: other pages (Django's CSRF page, a proxy's) may
        // carry inline styles, which parsing reports as violations of the page's CSP.
        var doc = new DOMParser().parseFromString(body, "text/html");
        var message = doc.querySelector(".error-page p");
        text = message ? message.textContent : "";
      }
    } catch (error) {
      text = "";
    }
    text = text.replace(/\s+/g, " ").trim();
    return text.length > MAX_SERVER_TEXT ? "" : text;
  }

  function reasonFor(xhr) {
    var status = xhr ? xhr.status : 0;
    var said = serverText(xhr);
    if (status === 403) {
      return "The page has expired or your browser refused its cookie. Reload the page, then try again.";
    }
    if (status === 429) {
      return said || "Too many searches in a short time; please wait a moment, then try again.";
    }
    if (status === 503) {
      return said || "The gallery is busy or restarting; please try again in a moment.";
    }
    if (status >= 500) {
      return said || "Something went wrong on the server; it has been logged. Please try again.";
    }
    if (status === 413) {
      return "The image is too large to send.";
    }
    return said || "The server answered with an error (" + status + ").";
  }

  // --- trying again ------------------------------------------------------------------------------

  function retry(elt, zone) {
    if (zone === "upload") {
      // The chosen file is kept by upload.js (the input is emptied after every request).
      document.dispatchEvent(new CustomEvent("gallery:upload-retry"));
    } else if (elt && elt.isConnected && elt.tagName === "FORM") {
      elt.requestSubmit();
    } else if (elt && elt.isConnected) {
      elt.click(); // a link with hx-get: HTMX takes the click
    } else {
      window.location.reload();
    }
  }

  function failed(event, reason) {
    var elt = event.detail.elt;
    var zone = zoneOf(elt);
    var xhr = event.detail.xhr;
    var expired = xhr && xhr.status === 403;
    showProblem({
      zone: zone,
      reason: reason,
      actionLabel: expired ? "Reload the page" : "Try again",
      action: expired
        ? function () {
            window.location.reload();
          }
        : function () {
            retry(elt, zone);
          },
    });
  }

  document.addEventListener("htmx:responseError", function (event) {
    failed(event, reasonFor(event.detail.xhr));
  });
  document.addEventListener("htmx:sendError", function (event) {
    failed(event, "The gallery could not be reached. Check your connection, then try again.");
  });
  document.addEventListener("htmx:timeout", function (event) {
    failed(event, "The server took too long to answer. Please try again.");
  });
  document.addEventListener("htmx:historyCacheMissLoadError", function () {
    showProblem({
      zone: "history",
      reason: "Please try again.",
      actionLabel: "Reload the page",
      action: function () {
        window.location.reload();
      },
    });
  });

  // --- the loading state --------------------------------------------------------------------

  function loadingLine(zone) {
    if (zone === "more") return document.querySelector("#more .loading");
    if (zone === "search") return document.querySelector("#results .results-head .loading");
    return null; // uploads report their own progress (upload.js)
  }

  // A search that takes long is usually one that waits for the search model to load (the first
  // after the server starts): ask the server, and say which it is.
  function explainSlow(line) {
    line.textContent = "Still searching…";
    if (!window.fetch) return;
    fetch(READINESS_URL, { headers: { Accept: "application/json" }, cache: "no-store" })
      .then(function (response) {
        return response.json();
      })
      .then(function (state) {
        if (state && state.encoder && state.encoder.loaded === false && line.isConnected) {
          line.textContent =
            "The search model is still loading after a restart; your search runs as soon as it is ready…";
        }
      })
      .catch(function () {
        // No readiness to ask: "Still searching…" stays, which is true.
      });
  }

  document.addEventListener("htmx:beforeRequest", function (event) {
    removeProblem();
    window.clearTimeout(slowTimer);
    var line = loadingLine(zoneOf(event.detail.elt));
    if (!line) return;
    line.textContent = zoneOf(event.detail.elt) === "more" ? "Loading…" : "Searching…";
    slowTimer = window.setTimeout(function () {
      explainSlow(line);
    }, SLOW_MS);
  });

  document.addEventListener("htmx:afterRequest", function () {
    window.clearTimeout(slowTimer);
  });
})();
