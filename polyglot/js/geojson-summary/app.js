// The `geojson-summary-js` process: bounding box, centroid and a census of
// the geometries of any GeoJSON object (geometry, Feature or
// FeatureCollection), in plain JavaScript.
//
// The centroid follows the dimension rule of JTS/GEOS: area-weighted over
// polygons if there are any, else length-weighted over lines, else the mean
// of the points. Coordinates are treated as planar (x = longitude, y =
// latitude), which is what GeoJSON viewers draw.
//
// Build: `./build.sh` (writes polyglot/out/geojson-summary-js.wasm).
import { defineProcess, Output, ProcessError, progress } from '../../../guest-sdk/js/wasmproc.js';

const GEOMETRY_TYPES = ['Point', 'MultiPoint', 'LineString', 'MultiLineString', 'Polygon', 'MultiPolygon'];

// Every geometry in the object, as [type, coordinates] pairs.
function geometries(object, out) {
  if (object === null || typeof object !== 'object') {
    throw ProcessError.invalidInput('a GeoJSON object was expected');
  }
  switch (object.type) {
    case 'FeatureCollection':
      if (!Array.isArray(object.features)) throw ProcessError.invalidInput("a FeatureCollection needs 'features'");
      object.features.forEach((feature) => geometries(feature, out));
      break;
    case 'Feature':
      if (object.geometry !== null && object.geometry !== undefined) geometries(object.geometry, out);
      out.features++;
      break;
    case 'GeometryCollection':
      (object.geometries || []).forEach((g) => geometries(g, out));
      break;
    default:
      if (!GEOMETRY_TYPES.includes(object.type)) {
        throw ProcessError.invalidInput(`unknown GeoJSON type '${object.type}'`);
      }
      if (!Array.isArray(object.coordinates)) {
        throw ProcessError.invalidInput(`a ${object.type} needs 'coordinates'`);
      }
      out.list.push([object.type, object.coordinates]);
      out.types[object.type] = (out.types[object.type] || 0) + 1;
  }
  return out;
}

function checkPosition(p) {
  if (!Array.isArray(p) || p.length < 2 || typeof p[0] !== 'number' || typeof p[1] !== 'number') {
    throw ProcessError.invalidInput(`invalid position ${JSON.stringify(p)}`);
  }
  return p;
}

// Points, lines (arrays of positions) and polygons (arrays of rings) of a geometry.
function parts(type, coordinates) {
  switch (type) {
    case 'Point': return { points: [coordinates], lines: [], polygons: [] };
    case 'MultiPoint': return { points: coordinates, lines: [], polygons: [] };
    case 'LineString': return { points: [], lines: [coordinates], polygons: [] };
    case 'MultiLineString': return { points: [], lines: coordinates, polygons: [] };
    case 'Polygon': return { points: [], lines: [], polygons: [coordinates] };
    default: return { points: [], lines: [], polygons: coordinates }; // MultiPolygon
  }
}

// Signed area and area-weighted centroid sums of a ring (shoelace).
function ring(r) {
  let a = 0, cx = 0, cy = 0;
  for (let i = 0; i < r.length - 1; i++) {
    const [x0, y0] = checkPosition(r[i]);
    const [x1, y1] = checkPosition(r[i + 1]);
    const cross = x0 * y1 - x1 * y0;
    a += cross;
    cx += (x0 + x1) * cross;
    cy += (y0 + y1) * cross;
  }
  return { area: a / 2, cx, cy };
}

function round(value, digits) {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

export const { describe, execute } = defineProcess({
  description: {
    id: 'geojson-summary-js',
    version: '0.1.0',
    title: 'GeoJSON summary (JavaScript)',
    description: 'Bounding box, centroid (JTS dimension rule, planar) and geometry census of a GeoJSON object.',
    keywords: ['geojson', 'bbox', 'centroid', 'javascript'],
    jobControlOptions: ['sync-execute', 'async-execute', 'dismiss'],
    inputs: {
      geojson: {
        title: 'GeoJSON',
        description: 'A geometry, Feature or FeatureCollection',
        schema: { type: 'object', required: ['type'], contentMediaType: 'application/geo+json' },
      },
      precision: {
        title: 'Decimal places of the results',
        minOccurs: 0,
        schema: { type: 'integer', minimum: 0, maximum: 15, default: 6 },
      },
    },
    outputs: {
      bbox: { title: 'Bounding box [minX, minY, maxX, maxY]', schema: { type: 'array', items: { type: 'number' } } },
      centroid: {
        title: 'Centroid, as a GeoJSON Point Feature',
        schema: { type: 'object', contentMediaType: 'application/geo+json' },
      },
      summary: { title: 'Counts of features, geometries by type and vertices', schema: { type: 'object' } },
    },
  },

  execute(inputs) {
    const digits = inputs.optionalNumber('precision', 6);
    const found = geometries(inputs.required('geojson'), { list: [], types: {}, features: 0 });
    progress(20, `${found.list.length} geometries`);

    let minX = Infinity, minY = Infinity, maxX = -Infinity, maxY = -Infinity, vertices = 0;
    const visit = (p) => {
      const [x, y] = checkPosition(p);
      vertices++;
      if (x < minX) minX = x;
      if (y < minY) minY = y;
      if (x > maxX) maxX = x;
      if (y > maxY) maxY = y;
    };
    // Weighted sums per dimension: 2 = polygons (area), 1 = lines (length), 0 = points (count).
    const sums = [{ w: 0, x: 0, y: 0 }, { w: 0, x: 0, y: 0 }, { w: 0, x: 0, y: 0 }];
    for (const [type, coordinates] of found.list) {
      const { points, lines, polygons } = parts(type, coordinates);
      for (const p of points) {
        visit(p);
        sums[0].w += 1;
        sums[0].x += p[0];
        sums[0].y += p[1];
      }
      for (const line of lines) {
        line.forEach(visit);
        for (let i = 0; i < line.length - 1; i++) {
          const [x0, y0] = line[i];
          const [x1, y1] = line[i + 1];
          const length = Math.hypot(x1 - x0, y1 - y0);
          sums[1].w += length;
          sums[1].x += ((x0 + x1) / 2) * length;
          sums[1].y += ((y0 + y1) / 2) * length;
        }
      }
      for (const polygon of polygons) {
        polygon.forEach((r, i) => {
          r.forEach(visit);
          const { area, cx, cy } = ring(r);
          // The exterior ring adds its area, holes remove theirs, whatever their winding.
          const sign = (i === 0 ? 1 : -1) * Math.sign(area);
          sums[2].w += sign * area;
          sums[2].x += (sign * cx) / 6;
          sums[2].y += (sign * cy) / 6;
        });
      }
    }
    if (vertices === 0) throw ProcessError.noResult('the GeoJSON has no coordinates');
    progress(80, 'centroid');

    const best = sums[2].w > 0 ? sums[2] : sums[1].w > 0 ? sums[1] : sums[0];
    // Degenerate input (zero area and zero length, no points): the bbox centre.
    const [cx, cy] = best.w > 0 ? [best.x / best.w, best.y / best.w] : [(minX + maxX) / 2, (minY + maxY) / 2];
    const centroid = {
      type: 'Feature',
      geometry: { type: 'Point', coordinates: [round(cx, digits), round(cy, digits)] },
      properties: { method: sums[2].w > 0 ? 'area' : sums[1].w > 0 ? 'length' : 'points' },
    };
    return [
      Output.json('bbox', [minX, minY, maxX, maxY].map((v) => round(v, digits))),
      Output.json('centroid', centroid, 'application/geo+json'),
      Output.json('summary', {
        features: found.features,
        geometries: found.list.length,
        geometryTypes: found.types,
        vertices,
        area: round(sums[2].w, digits),
        length: round(sums[1].w, digits),
      }),
    ];
  },
});
