/**
 * The OData documents of the emulated service (DSP0266 "Service root", "OData
 * $metadata"): `/redfish/v1/$metadata`, a CSDL document that references the
 * DMTF schema file of every type the tree uses, and `/redfish/v1/odata`, the
 * service document listing the root's resources. Also the per-resource
 * `Link: <…>; rel=describedby` target (the type's JSON schema).
 */
import type { Json } from './resources.js';

const SCHEMAS = 'http://redfish.dmtf.org/schemas/v1';

/** `#ComputerSystem.v1_22_0.ComputerSystem` → `{ ns: 'ComputerSystem.v1_22_0', base: 'ComputerSystem' }`. */
function parseType(type: unknown): { ns: string; base: string } | undefined {
  if (typeof type !== 'string') return undefined;
  const m = /^#([A-Za-z0-9]+)(?:\.(v\d+_\d+_\d+))?\.([A-Za-z0-9]+)$/.exec(type);
  if (!m) return undefined;
  return { base: m[1]!, ns: m[2] ? `${m[1]}.${m[2]}` : m[1]! };
}

/** The JSON schema describing a resource (the `Link` header's describedby target), if typed. */
export function describedBy(json: Json): string | undefined {
  const t = parseType(json['@odata.type']);
  return t ? `${SCHEMAS}/${t.ns}.json` : undefined;
}

/** CSDL `$metadata` referencing the schema file of every type in the tree (plus the service container). */
export function metadataXml(resources: Iterable<Json>): string {
  const byFile = new Map<string, Set<string>>();
  const add = (base: string, ns: string) => {
    const file = `${SCHEMAS}/${base}_v1.xml`;
    const set = byFile.get(file) ?? new Set<string>();
    set.add(base);
    set.add(ns);
    byFile.set(file, set);
  };
  add('ServiceRoot', 'ServiceRoot.v1_17_0');
  const visit = (v: unknown) => {
    if (Array.isArray(v)) for (const x of v) visit(x);
    else if (v && typeof v === 'object') {
      const t = parseType((v as Json)['@odata.type']);
      if (t) add(t.base, t.ns);
      for (const x of Object.values(v)) visit(x);
    }
  };
  for (const r of resources) visit(r);
  // Every Redfish CSDL document uses these vocabularies.
  const refs = [
    `  <edmx:Reference Uri="http://docs.oasis-open.org/odata/odata/v4.0/errata03/csd01/complete/vocabularies/Org.OData.Core.V1.xml">\n    <edmx:Include Namespace="Org.OData.Core.V1" Alias="OData"/>\n  </edmx:Reference>`,
    `  <edmx:Reference Uri="${SCHEMAS}/RedfishExtensions_v1.xml">\n    <edmx:Include Namespace="RedfishExtensions.v1_0_0" Alias="Redfish"/>\n  </edmx:Reference>`,
  ];
  for (const [file, namespaces] of [...byFile].sort(([a], [b]) => a.localeCompare(b)))
    refs.push(
      `  <edmx:Reference Uri="${file}">\n${[...namespaces]
        .sort()
        .map((n) => `    <edmx:Include Namespace="${n}"/>`)
        .join('\n')}\n  </edmx:Reference>`,
    );
  return `<?xml version="1.0" encoding="UTF-8"?>
<edmx:Edmx xmlns:edmx="http://docs.oasis-open.org/odata/ns/edmx" Version="4.0">
${refs.join('\n')}
  <edmx:DataServices>
    <Schema xmlns="http://docs.oasis-open.org/odata/ns/edm" Namespace="Service">
      <EntityContainer Name="Service" Extends="ServiceRoot.v1_17_0.ServiceContainer"/>
    </Schema>
  </edmx:DataServices>
</edmx:Edmx>
`;
}

/** The OData service document: one entry per resource the service root links. */
export function odataServiceDocument(root: Json | undefined): Json {
  const value: Json[] = [{ name: 'Service', kind: 'Singleton', url: '/redfish/v1/' }];
  for (const [name, v] of Object.entries(root ?? {})) {
    const id = (v as Json | undefined)?.['@odata.id'];
    if (name !== 'Links' && typeof id === 'string') value.push({ name, kind: 'Singleton', url: id });
  }
  const sessions = root?.Links?.Sessions?.['@odata.id'];
  if (typeof sessions === 'string') value.push({ name: 'Sessions', kind: 'Singleton', url: sessions });
  return { '@odata.context': '/redfish/v1/$metadata', value };
}
