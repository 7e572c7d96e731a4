// Our own code (not vendored). myst-nb loads it between requirejs/require.js and
// html-manager/embed-amd.js, on pages with ipywidgets state only (nb_ipywidgets_js, _config.yml).
(function () {
  // 1. embed-amd.js computes the public path of its bundled assets (the Font Awesome fonts) from
  // the require.js URL of its AMD modules, by default next to each page
  // (<page dir>/@jupyter-widgets/html-manager/dist/, a 404). Map those module ids to
  // _static/html-manager/, where the fonts are vendored, relative to this script's own URL so
  // that it works at any page depth.
  var base = new URL("../html-manager/", document.currentScript.src).href;
  require.config({
    paths: {
      "@jupyter-widgets/html-manager": base + "html-manager",
      "@jupyter-widgets/html-manager/dist/libembed-amd": base + "libembed-amd"
    }
  });

  // 2. The widgets typeset their labels with the MathJax 2 API, MathJax.Hub.Queue, whenever
  // window.MathJax exists; pages with math load MathJax 3, which has no Hub, and every widget
  // with a description then throws "Cannot read properties of undefined (reading 'Queue')".
  // Give MathJax 3 a Hub.Queue that typesets the element with MathJax 3's own API.
  function hub() {
    return {
      Queue: function (command) {
        var mj = window.MathJax, element = command && command[2];
        if (element && mj && typeof mj.typesetPromise === "function") {
          mj.typesetPromise([element]).catch(function (err) { console.warn(err); });
        }
      }
    };
  }
  var mj = window.MathJax;
  if (mj && !mj.Hub && !mj.version) {
    // MathJax 3 configuration, MathJax itself not loaded yet (it is deferred): shim the config
    // object for widgets rendered before it loads, and the real object once it is ready.
    mj.Hub = hub();
    var startup = mj.startup = mj.startup || {};
    var ready = startup.ready;
    startup.ready = function () {
      if (ready) { ready(); } else { window.MathJax.startup.defaultReady(); }
      if (!window.MathJax.Hub) { window.MathJax.Hub = hub(); }
    };
  } else if (mj && mj.version && !mj.Hub) {
    mj.Hub = hub();  // MathJax 3 already loaded
  }
})();
