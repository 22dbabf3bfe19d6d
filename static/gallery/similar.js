// "Find similar" on a result starts a new search from that artwork alone: the words and the image
// of the current search are set aside (keeping them would mostly return the list already on
// screen). The page says what was set aside and offers it back in one click.
(function () {
  "use strict";

  var pending = null; // what the last "Find similar" click set aside

  document.addEventListener(
    "click",
    function (event) {
      var link = event.target.closest && event.target.closest("#result-list .find-similar");
      if (!link) return;
      var q = document.getElementById("q");
      var upload = document.querySelector('#search-form input[name="upload"]');
      var words = q ? q.value.trim() : "";
      var image = upload ? upload.value : "";
      pending = words || image ? { link: link.getAttribute("href"), words: words, image: image } : null;
    },
    true
  );

  function describe(words, image) {
    if (words && image) return "Your words “" + words + "” and your image were set aside.";
    if (words) return "Your words “" + words + "” were set aside.";
    return "Your image was set aside.";
  }

  document.addEventListener("htmx:afterSettle", function () {
    if (!pending) return;
    var setAside = pending;
    pending = null;
    var results = document.getElementById("results");
    var chip = document.querySelector(".chip-similar .chip-label a");
    if (!results || !chip) return;
    var url = new URL(setAside.link, window.location.href);
    if (setAside.words) url.searchParams.set("q", setAside.words);
    if (setAside.image) url.searchParams.set("upload", setAside.image);
    var note = document.createElement("p");
    note.className = "message notice set-aside";
    note.appendChild(
      document.createTextNode(
        "Showing artworks like “" + chip.textContent.trim() + "”. " + describe(setAside.words, setAside.image) + " "
      )
    );
    var back = document.createElement("a");
    back.href = url.pathname + url.search;
    back.textContent = "Search with them too";
    back.setAttribute("hx-get", back.getAttribute("href"));
    back.setAttribute("hx-target", "#search");
    back.setAttribute("hx-swap", "outerHTML");
    back.setAttribute("hx-push-url", "true");
    back.setAttribute("hx-indicator", "#search");
    note.appendChild(back);
    var head = results.querySelector(".results-head");
    if (head) head.insertAdjacentElement("afterend", note);
    else results.insertBefore(note, results.firstChild);
    if (window.htmx) window.htmx.process(note);
  });

  // Any other request before the answer arrived: the note no longer applies.
  document.addEventListener("htmx:beforeRequest", function (event) {
    var elt = event.detail.elt;
    if (pending && !(elt && elt.matches && elt.matches(".find-similar"))) pending = null;
  });
})();
