# Offline front-end files for Folium maps (Leaflet and plugins), from the npm registry.
# Included by the top-level Makefile (`include web/assets/assets.mk`); paths are relative
# to the repository root. Targets that serve or test maps depend on the stamp file:
#
#   run test: web/assets/node_modules/.installed
#
# The stamp lives inside node_modules, so deleting node_modules also triggers a reinstall.

ASSETS_DIR := web/assets

$(ASSETS_DIR)/node_modules/.installed: $(ASSETS_DIR)/package.json $(ASSETS_DIR)/package-lock.json
	@# A fresh Debian machine has no npm: as root, fetch it from Debian's registry; otherwise say how.
	@command -v npm >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	  echo "installing nodejs and npm with apt-get (needed once, for the map's offline front-end files)" && \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm; } || { \
	  echo "error: npm not found. Install Node.js and npm (Debian: apt-get install nodejs npm)," >&2; \
	  echo "       then run make again to install the map's front-end files." >&2; \
	  exit 1; }
	npm ci --prefix $(ASSETS_DIR) --ignore-scripts --no-audit --no-fund
	@# The packages' demo pages load Leaflet from a CDN; they are never served, and a tree
	@# without them shows at a glance that nothing here reaches outside the intranet.
	rm -rf $(ASSETS_DIR)/node_modules/leaflet.markercluster/example $(ASSETS_DIR)/node_modules/leaflet.vectorgrid/docs \
	  $(ASSETS_DIR)/node_modules/leaflet.vectorgrid/dist/vectorgrid-api-docs.html
	touch $@
