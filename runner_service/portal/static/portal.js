// The portal's behaviour (no inline script: the Content-Security-Policy refuses it).
// The job page's output: keep at most data-max-lines lines in the page (a 20 MB log must not
// grow the browser without bound) and, while "Follow" is checked, stay at the newest line.
(function () {
  'use strict';

  function trimAndFollow() {
    var log = document.getElementById('log');
    if (!log) {
      return;
    }
    var most = parseInt(log.getAttribute('data-max-lines') || '3000', 10);
    while (log.childElementCount > most) {
      log.removeChild(log.firstElementChild);
    }
    var follow = document.getElementById('follow');
    if (follow && follow.checked) {
      log.scrollTop = log.scrollHeight;
    }
  }

  // <time class="local" datetime="ISO"> in the viewer's own time zone.
  function localTimes() {
    var times = document.querySelectorAll('time.local');
    for (var i = 0; i < times.length; i++) {
      var when = new Date(times[i].getAttribute('datetime'));
      if (!isNaN(when.getTime())) {
        times[i].textContent = when.toLocaleString(undefined, {dateStyle: 'medium', timeStyle: 'long'});
      }
    }
  }

  document.addEventListener('DOMContentLoaded', localTimes);
  document.addEventListener('DOMContentLoaded', trimAndFollow);
  document.addEventListener('htmx:oobAfterSwap', trimAndFollow);
  document.addEventListener('htmx:afterSettle', trimAndFollow);
})();
