/* tillgate portal: the camera scanner (docs/portal.md, "Scanning with the camera").

   The markup (templates/scanner.html) starts hidden; this script shows it when the page has
   the decoder (vendor/jsqr-1.4.0/jsQR.js) and the browser a camera API (a secure context:
   HTTPS, or http://localhost). "Scan with camera" opens the rear camera, draws frames to a
   canvas and decodes them; on a hit it stops the camera, puts what the code holds into the
   card field and submits the form: the server decodes it as it does typed input. The camera
   also stops on "Stop camera", on Escape and when the page is hidden. Refused, missing or
   busy cameras are said in the status line and focus goes back to the typed field.

   No inline script, no eval: the page's CSP is script-src 'self'. */
(function () {
  "use strict";

  var PAUSE_MS = 120; // between two decodes: a held card is read in well under a second
  var MAX_SIDE = 640; // frames are scaled down to this before decoding (phone cameras give more)
  var TYPE_INSTEAD = " Type or scan the number into the field instead.";

  function why(error) {
    var name = error && error.name;
    if (name === "NotAllowedError" || name === "SecurityError") {
      return "The camera was not allowed." + TYPE_INSTEAD;
    }
    if (name === "NotFoundError" || name === "OverconstrainedError") {
      return "No camera was found." + TYPE_INSTEAD;
    }
    if (name === "NotReadableError" || name === "AbortError") {
      return "The camera is busy in another app." + TYPE_INSTEAD;
    }
    return "The camera could not be started." + TYPE_INSTEAD;
  }

  function setUp(box) {
    var field = document.getElementById(box.getAttribute("data-scanner-for"));
    var form = field && field.form;
    var media = navigator.mediaDevices;
    if (!form || typeof window.jsQR !== "function" || !media || !media.getUserMedia) {
      return; // the typed field alone, as without script
    }
    var start = box.querySelector(".scan-start");
    var stopButton = box.querySelector(".scan-stop");
    var view = box.querySelector(".scan-view");
    var video = box.querySelector(".scan-video");
    var status = box.querySelector(".scan-status");
    var canvas = document.createElement("canvas");
    var context = canvas.getContext("2d", { willReadFrequently: true });
    var stream = null;
    var timer = null;
    var opening = false; // getUserMedia asked, not answered yet

    function state(name, text) {
      box.setAttribute("data-state", name);
      if (text !== undefined) {
        status.textContent = text;
      }
    }

    function release(tracks) {
      tracks.getTracks().forEach(function (track) { track.stop(); });
    }

    function stop(name, text) {
      opening = false;
      if (timer !== null) {
        clearTimeout(timer);
        timer = null;
      }
      if (stream !== null) {
        release(stream);
        stream = null;
      }
      video.srcObject = null;
      view.hidden = true;
      start.setAttribute("aria-expanded", "false");
      state(name, text);
    }

    function decode() {
      var width = video.videoWidth;
      var height = video.videoHeight;
      if (video.readyState < 2 || !width || !height) {
        return null;
      }
      var scale = Math.min(1, MAX_SIDE / Math.max(width, height));
      canvas.width = Math.round(width * scale);
      canvas.height = Math.round(height * scale);
      context.drawImage(video, 0, 0, canvas.width, canvas.height);
      var pixels = context.getImageData(0, 0, canvas.width, canvas.height);
      var code = window.jsQR(pixels.data, pixels.width, pixels.height);
      return code && code.data ? code.data : null;
    }

    function tick() {
      timer = null;
      if (stream === null) {
        return;
      }
      var text = decode();
      if (text === null) {
        timer = setTimeout(tick, PAUSE_MS); // after the decode: a slow phone decodes less often
        return;
      }
      stop("read", "Code read. Looking the card up.");
      field.value = text;
      if (form.requestSubmit) {
        form.requestSubmit();
      } else {
        form.submit();
      }
    }

    function begin() {
      if (stream !== null || opening) {
        return;
      }
      opening = true;
      state("starting", "Starting the camera.");
      media.getUserMedia({ video: { facingMode: { ideal: "environment" } }, audio: false })
        .then(function (opened) {
          if (!opening) { // stopped or hidden while the browser asked
            release(opened);
            return;
          }
          opening = false;
          stream = opened;
          video.srcObject = opened;
          view.hidden = false;
          start.setAttribute("aria-expanded", "true");
          state("scanning", "Camera on. Hold the QR code in front of it, or press Stop camera.");
          stopButton.focus();
          return video.play().then(tick);
        })
        .catch(function (error) {
          if (stream === null && !opening) {
            return; // stopped while the video started: play() was aborted, nothing failed
          }
          stop("failed", why(error));
          field.focus();
        });
    }

    function cancel() {
      if (stream !== null || opening) {
        stop("idle", "Camera stopped.");
        start.focus();
      }
    }

    start.addEventListener("click", begin);
    stopButton.addEventListener("click", cancel);
    box.addEventListener("keydown", function (event) {
      if (event.key === "Escape") {
        cancel();
      }
    });
    window.addEventListener("pagehide", function () { stop("idle"); });
    document.addEventListener("visibilitychange", function () {
      if (document.hidden && (stream !== null || opening)) {
        stop("idle", "Camera stopped.");
      }
    });
    box.hidden = false;
    state("idle");
  }

  Array.prototype.forEach.call(document.querySelectorAll("[data-scanner-for]"), setUp);
}());
