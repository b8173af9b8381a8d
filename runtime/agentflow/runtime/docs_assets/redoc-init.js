// Starts the stock ReDoc on the /redoc page. It lives in a file, not inline, so the page's
// CSP can say `script-src 'self'`. The page tells it, in data attributes of #redoc, where
// the OpenAPI document is and the nonce of this response, which ReDoc puts on the <style>
// elements it inserts (the CSP has no 'unsafe-inline'). A `nonce` attribute on the element
// would not do: browsers blank it once the page is parsed.
"use strict";
(function () {
  var root = document.getElementById("redoc");
  document.body.style.margin = "0"; // ReDoc fills the window (set through the DOM: no inline style)
  Redoc.init(
    root.getAttribute("data-openapi-url"),
    { nonce: root.getAttribute("data-style-nonce") },
    root
  );
})();
