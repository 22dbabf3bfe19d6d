// The image query: the picture is shrunk in the browser before it is sent (a phone photo is many
// megabytes and the model looks at a few hundred pixels; the server keeps its own limits), shown
// large at once, and its upload reports progress. Picker, drop and paste all end in the upload
// form's submit event, which is where the file is prepared.
(function () {
  "use strict";

  var MAX_SIDE = 1600; // px: the longest side sent; the search model needs far less
  var REENCODE_BYTES = 3 * 1024 * 1024; // a smaller picture heavier than this is re-encoded too
  var JPEG_QUALITY = 0.9;

  var sending = false; // true while our own requestSubmit runs: that submit goes through
  var lastFile = null; // the file as sent, for "Try again"
  var previewUrl = null;

  function uploadForm() {
    return document.getElementById("upload-form");
  }

  // --- status beside the drop zone ------------------------------------------------------------

  function statusBox() {
    var form = uploadForm();
    if (!form) return null;
    var box = form.querySelector(".upload-status");
    if (!box) {
      box = document.createElement("div");
      box.className = "upload-status";
      var figure = document.createElement("img");
      figure.className = "upload-preview";
      figure.alt = "The image you chose";
      var text = document.createElement("p");
      text.className = "upload-status-text";
      text.setAttribute("aria-live", "polite");
      var bar = document.createElement("progress");
      bar.className = "upload-progress";
      bar.max = 100;
      bar.setAttribute("aria-label", "Upload progress");
      box.appendChild(figure);
      box.appendChild(text);
      box.appendChild(bar);
      var anchor = form.querySelector("#upload-error");
      form.insertBefore(box, anchor);
    }
    return box;
  }

  function setStatus(message, percent) {
    var box = statusBox();
    if (!box) return;
    box.querySelector(".upload-status-text").textContent = message;
    var bar = box.querySelector(".upload-progress");
    if (percent === null || percent === undefined) {
      bar.removeAttribute("value"); // indeterminate: the server is working
    } else {
      bar.value = percent;
    }
  }

  function showPreview(file) {
    var box = statusBox();
    if (!box || !window.URL || !URL.createObjectURL) return;
    if (previewUrl) URL.revokeObjectURL(previewUrl);
    previewUrl = URL.createObjectURL(file);
    box.querySelector(".upload-preview").src = previewUrl;
  }

  function clearStatus() {
    var form = uploadForm();
    var box = form && form.querySelector(".upload-status");
    if (box) box.remove();
  }

  function megabytes(bytes) {
    return (bytes / (1024 * 1024)).toFixed(1) + " MiB"; // the unit of the server's messages
  }

  // --- shrinking ----------------------------------------------------------------------------

  function canvasBlob(canvas) {
    return new Promise(function (resolve) {
      canvas.toBlob(resolve, "image/jpeg", JPEG_QUALITY);
    });
  }

  // The file to send: the original when it is small already or the browser cannot read it (the
  // server then says what is wrong), else a JPEG at most MAX_SIDE pixels on its longest side.
  function prepare(file) {
    if (!file || !file.type || file.type.indexOf("image/") !== 0 || !window.createImageBitmap) {
      return Promise.resolve(file);
    }
    return createImageBitmap(file)
      .then(function (bitmap) {
        var longest = Math.max(bitmap.width, bitmap.height);
        if (longest <= MAX_SIDE && file.size <= REENCODE_BYTES) {
          bitmap.close();
          return file;
        }
        var scale = Math.min(1, MAX_SIDE / longest);
        var canvas = document.createElement("canvas");
        canvas.width = Math.max(1, Math.round(bitmap.width * scale));
        canvas.height = Math.max(1, Math.round(bitmap.height * scale));
        var context = canvas.getContext("2d");
        context.fillStyle = "#fff"; // transparent areas: white, as most viewers show them
        context.fillRect(0, 0, canvas.width, canvas.height);
        context.drawImage(bitmap, 0, 0, canvas.width, canvas.height);
        bitmap.close();
        return canvasBlob(canvas).then(function (blob) {
          if (!blob || blob.size >= file.size) return file;
          var name = (file.name || "image").replace(/\.[^.]*$/, "") + ".jpg";
          return new File([blob], name, { type: "image/jpeg", lastModified: Date.now() });
        });
      })
      .catch(function () {
        return file;
      });
  }

  function send(form, file) {
    var input = form.querySelector('input[type="file"]');
    var transfer = new DataTransfer();
    transfer.items.add(file);
    input.files = transfer.files;
    lastFile = file;
    sending = true;
    try {
      form.requestSubmit();
    } finally {
      sending = false;
    }
  }

  // Every way in (picker, drop, paste, "Try again") submits the upload form: hold that submit
  // back until the file is prepared, then submit it again for HTMX to send.
  document.addEventListener(
    "submit",
    function (event) {
      var form = event.target;
      if (!form || form.id !== "upload-form" || sending) return;
      var input = form.querySelector('input[type="file"]');
      var file = input && input.files && input.files[0];
      if (!file) return;
      event.preventDefault();
      event.stopPropagation();
      showPreview(file);
      setStatus("Preparing your image…", null);
      prepare(file).then(function (ready) {
        if (!form.isConnected) return;
        send(form, ready);
      });
    },
    true
  );

  document.addEventListener("gallery:upload-retry", function () {
    var form = uploadForm();
    if (form && lastFile) {
      showPreview(lastFile);
      send(form, lastFile);
    }
  });

  // Progress: HTMX hands over its XMLHttpRequest before sending it.
  document.addEventListener("htmx:beforeSend", function (event) {
    if (!event.detail.elt || event.detail.elt.id !== "upload-form") return;
    var total = lastFile ? lastFile.size : 0;
    setStatus("Sending your image (" + megabytes(total) + ")…", 0);
    event.detail.xhr.upload.addEventListener("progress", function (progress) {
      if (!progress.lengthComputable) return;
      var percent = Math.round((100 * progress.loaded) / progress.total);
      setStatus("Sending your image: " + percent + " % of " + megabytes(progress.total), percent);
    });
    event.detail.xhr.upload.addEventListener("load", function () {
      setStatus("Searching by your image…", null);
    });
  });

  // Done either way: on success the chip shows the image, on failure the message says why.
  document.addEventListener("htmx:afterRequest", function (event) {
    if (event.detail.elt && event.detail.elt.id === "upload-form") clearStatus();
  });
})();
