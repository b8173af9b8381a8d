// Starts the stock Swagger UI on the /docs page. It lives in a file, not inline, so the
// page's CSP can say `script-src 'self'`; the page tells it where the OpenAPI document is
// through the data-openapi-url attribute of #swagger-ui.
"use strict";
(function () {
  var root = document.getElementById("swagger-ui");
  SwaggerUIBundle({
    url: root.getAttribute("data-openapi-url"),
    domNode: root,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
    deepLinking: true,
    // no online validator badge: it would call validator.swagger.io
    validatorUrl: null,
    // ?url= / ?configUrl= in the address bar must not load another document
    queryConfigEnabled: false,
  });
})();
