/* The wall's service worker: a wall PC that (re)starts while the server is away still opens the
   wall, instead of the browser's error page that would stay until someone walks up to it.

   Network first, always: the wall page and our static files are taken from the server when it
   answers (and the copy kept up to date), and from the copy only when it does not. The page
   then shows its last board with the stale badge and "connecting…", and recovers by itself like
   a running wall (static/wall.js). Data requests (/api/...) are never kept here: the wall
   decides itself what to show when they fail. Served as /wall-sw.js, registered for /wall. */
'use strict';

var CACHE = 'gridatlas-wall-v1';

self.addEventListener('install', function () { self.skipWaiting(); });
self.addEventListener('activate', function (event) { event.waitUntil(self.clients.claim()); });

function kept(url) {
  return url.origin === self.location.origin &&
    (url.pathname === '/wall' || url.pathname.indexOf('/static/') === 0);
}

self.addEventListener('fetch', function (event) {
  var request = event.request;
  if (request.method !== 'GET' || !kept(new URL(request.url))) { return; }
  event.respondWith(fetch(request).then(function (response) {
    // Only a real wall page: not a redirect to the sign-in page, not an error.
    if (response.ok && !response.redirected) {
      var copy = response.clone();
      event.waitUntil(caches.open(CACHE).then(function (cache) { return cache.put(request, copy); }));
    }
    return response;
  }).catch(function () {
    return caches.match(request, {ignoreVary: true}).then(function (hit) { return hit || Response.error(); });
  }));
});
