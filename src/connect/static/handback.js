/* The Connect popup's last page: hand the outcome to the opener, at one exact origin, and close. */
(function () {
  'use strict';
  var el = document.getElementById('keygate-handback');
  if (el === null || window.opener === null) return;
  var d = el.dataset;
  var message = { type: 'keygate-connect', state: d.state === undefined ? null : d.state };
  if (d.scopedKey !== undefined) message.scopedKey = d.scopedKey;
  if (d.error !== undefined) message.error = d.error;
  // The browser delivers this only if the opener is at targetOrigin (HTML §9.3.3): never by prefix, never '*'.
  window.opener.postMessage(message, d.targetOrigin);
  window.close();
})();
