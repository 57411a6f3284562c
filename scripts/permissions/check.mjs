// The permission check: every row of infra/permissions.yaml, evaluated with an IAM policy
// evaluator (@cloud-copilot/iam-simulate: identity, resource and trust policies, conditions)
// against the expanded template that expand.py prints on standard input.
//
//   python expand.py template.yaml infra/permissions.yaml | node check.mjs [--markdown]
//
// Prints one JSON line per evaluation and a summary; exits 1 when any evaluation disagrees
// with the table, or when any policy holds a condition key CloudFormation never substitutes.
// With --markdown, prints the table for docs/deploy.md instead (and still fails on errors).
import { readFileSync } from 'node:fs'
import { runSimulation } from '@cloud-copilot/iam-simulate'

const world = JSON.parse(readFileSync(0, 'utf8'))
const { resources, table, account, partition, region, parameters } = world
const markdown = process.argv.includes('--markdown')
const watch = `aws:ResourceTag/${parameters.WatchTagKey}`
const protect = `aws:ResourceTag/${parameters.ProtectTagKey}`
const failures = []

const asDocument = (doc) => (typeof doc === 'string' ? JSON.parse(doc) : doc)
const fill = (text) =>
  text.replace(/\{([A-Za-z0-9:.-]+)\}/g, (_, token) => {
    if (token === 'partition') return partition
    if (token === 'region') return region
    if (token === 'account') return account
    if (token === 'stack') return 'vigil'
    const [logical, attr] = token.split('.')
    const r = resources[logical]
    if (!r) throw new Error(`the table names ${logical}, which the template does not create`)
    return attr === 'Arn' ? r.Arn : r.Ref
  })

// Every policy document of the stack, to look for condition keys left as literal ${...}.
function literalKeys(where, doc) {
  for (const s of [].concat(asDocument(doc).Statement ?? [])) {
    for (const [op, keys] of Object.entries(s.Condition ?? {})) {
      for (const key of Object.keys(keys)) {
        if (key.includes('${')) {
          failures.push({ check: 'literal-key', where, sid: s.Sid, operator: op, key })
        }
      }
    }
  }
}

const managed = {}
for (const [logical, r] of Object.entries(resources)) {
  const p = r.Properties ?? {}
  if (r.Type === 'AWS::IAM::ManagedPolicy') {
    managed[r.Arn] = { name: logical, policy: asDocument(p.PolicyDocument) }
    literalKeys(logical, p.PolicyDocument)
  }
  if (r.Type === 'AWS::IAM::Role') {
    for (const inline of p.Policies ?? []) literalKeys(`${logical}/${inline.PolicyName}`, inline.PolicyDocument)
  }
  if (r.Type === 'AWS::KMS::Key') literalKeys(logical, p.KeyPolicy)
  if (r.Type === 'AWS::SNS::TopicPolicy' || r.Type === 'AWS::S3::BucketPolicy') literalKeys(logical, p.PolicyDocument)
}

const roles = {}
for (const [short, logical] of Object.entries(table.roles)) {
  const r = resources[logical]
  if (!r || r.Type !== 'AWS::IAM::Role') throw new Error(`role ${short}: ${logical} is not a role of the template`)
  const p = r.Properties
  const policies = (p.Policies ?? []).map((i) => ({ name: i.PolicyName, policy: asDocument(i.PolicyDocument) }))
  for (const arn of p.ManagedPolicyArns ?? []) {
    // AWS managed policies (logging, tracing) are not modelled: none grants a row's action.
    if (managed[arn]) policies.push(managed[arn])
  }
  roles[short] = { arn: r.Arn, policies, trust: asDocument(p.AssumeRolePolicyDocument) }
}
// A policy the stack makes for the users' own roles: a role that holds only it.
for (const [short, logical] of Object.entries(table.attached ?? {})) {
  const r = resources[logical]
  if (!r || r.Type !== 'AWS::IAM::ManagedPolicy') throw new Error(`attached ${short}: ${logical} is not a managed policy of the template`)
  roles[short] = { arn: `arn:${partition}:iam::${account}:role/users-${short}-role`, policies: [managed[r.Arn]] }
}
const rolesOfStack = Object.values(resources).filter((r) => r.Type === 'AWS::IAM::Role').length

const resourcePolicy = (kind) => {
  const logical = table.resource_policies[kind]
  if (!logical) return undefined
  const p = resources[logical].Properties
  return asDocument(p.KeyPolicy ?? p.PolicyDocument)
}

// One request through the evaluator: its overall result, or `error: ...` when it refuses the
// request (an unknown action, a resource of the wrong type).
async function evaluate({ principal, identity, action, resource, context, resourcePolicyDoc }) {
  const simulation = {
    request: {
      principal,
      action,
      resource: { resource, accountId: account },
      contextVariables: { 'aws:SecureTransport': 'true', ...context },
    },
    identityPolicies: identity,
    serviceControlPolicies: [],
    resourceControlPolicies: [],
    resourcePolicy: resourcePolicyDoc,
  }
  const result = await runSimulation(simulation, {})
  if (result.resultType === 'error') return `error: ${JSON.stringify(result.errors)}`
  return result.overallResult
}

const arnOf = (kind) => {
  if (!(kind in table.resources)) throw new Error(`no resource named ${kind} in the table`)
  return fill(table.resources[kind])
}

// Compares a result with what the table wants ('denied' is either kind of denial) and reports.
function judge(line, want, got) {
  const ok = want === 'denied' ? got === 'ImplicitlyDenied' || got === 'ExplicitlyDenied' : got === want
  const full = { ...line, want, got, ok }
  if (!markdown) console.log(JSON.stringify(full))
  if (!ok) failures.push(full)
}

const fillContext = (ctx) =>
  Object.fromEntries(Object.entries(ctx ?? {}).map(([k, v]) => [k, Array.isArray(v) ? v : fill(String(v))]))

// One evaluation, compared with what the table expects.
async function expect(row, caller, tags, want) {
  const service = caller.startsWith('service:') ? caller.slice('service:'.length) : undefined
  const principal = service ?? roles[caller].arn
  const identity = service ? [] : roles[caller].policies
  const context = { ...fillContext(row.context), ...tags }
  if (service) context['aws:SourceAccount'] ??= account
  const got = await evaluate({
    principal,
    identity,
    action: row.action,
    resource: arnOf(row.resource),
    context,
    resourcePolicyDoc: resourcePolicy(row.resource),
  })
  judge({ action: row.action, on: row.resource, caller, tags: Object.keys(tags) }, want, got)
}

const tagged = { [watch]: 'true' }
const untagged = {}
const protectedToo = { [watch]: 'true', [protect]: 'true' }
const onlyProtected = { [protect]: 'true' }

for (const row of table.operations) {
  const callers = row.by
  for (const caller of callers) {
    if (row.scope === 'watched') {
      await expect(row, caller, tagged, 'Allowed')
      await expect(row, caller, untagged, 'denied')
      await expect(row, caller, protectedToo, 'ExplicitlyDenied')
    } else if (row.scope === 'unprotected') {
      await expect(row, caller, untagged, 'Allowed')
      await expect(row, caller, onlyProtected, 'ExplicitlyDenied')
    } else {
      await expect(row, caller, untagged, 'Allowed')
    }
  }
  for (const other of Object.keys(roles)) {
    if (!callers.includes(other)) await expect(row, other, row.scope === 'watched' ? tagged : untagged, 'denied')
  }
}
for (const row of table.denied) {
  const callers = row.by ? [row.by] : Object.keys(roles)
  for (const caller of callers) await expect(row, caller, untagged, 'denied')
}
// The trust policy is the resource policy of sts:AssumeRole on the role. A principal of another
// account needs its own policy to allow the call too (`caller_allows`: it does, as the central
// stack's table proves), so that the trust policy alone decides.
const callerAllows = [
  {
    name: 'caller',
    policy: { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 'sts:AssumeRole', Resource: '*' }] },
  },
]
for (const t of table.trust) {
  const role = roles[t.role]
  const got = await evaluate({
    principal: fill(t.principal),
    identity: t.caller_allows ? callerAllows : [],
    action: 'sts:AssumeRole',
    resource: role.arn,
    context: fillContext(t.context),
    resourcePolicyDoc: role.trust,
  })
  judge({ trust: t.role, principal: t.principal, note: t.note }, t.expect, got)
}

if (markdown) {
  const verdict = (row) => {
    if (row.scope === 'watched')
      return `allowed if tagged \`${parameters.WatchTagKey}=true\`; denied untagged; explicitly denied if also \`${parameters.ProtectTagKey}=true\``
    if (row.scope === 'unprotected') return `allowed; explicitly denied if tagged \`${parameters.ProtectTagKey}=true\``
    if (row.scope === 'any') return 'allowed (no resource-level scoping)'
    return 'allowed'
  }
  console.log('| operation | by | on | verdict (every other role: denied) |')
  console.log('|---|---|---|---|')
  for (const row of table.operations) {
    const note = row.note ? ` (${row.note})` : ''
    console.log(`| \`${row.action}\` | ${row.by.join(', ')} | ${row.resource}${note} | ${verdict(row)} |`)
  }
  for (const row of table.denied) {
    console.log(`| \`${row.action}\` | ${row.by ?? 'every role'} | ${row.resource} (${row.note}) | denied |`)
  }
  for (const t of table.trust) {
    const note = t.note ? ` (${t.note})` : ''
    console.log(`| \`sts:AssumeRole\` | ${t.principal.replace('{partition}', 'aws').replace('{account}', 'ACCOUNT')}${note} | ${t.role} role | ${t.expect === 'Allowed' ? 'allowed' : 'denied'} |`)
  }
}

console.error(
  `permission check: ${table.operations.length} operations, ${Object.keys(table.roles).length} of the stack's ${rolesOfStack} roles` +
    ` and ${Object.keys(table.attached ?? {}).length} policies for the users' roles; ` +
    `${failures.length} disagreement(s)`,
)
for (const f of failures) console.error(`FAILED ${JSON.stringify(f)}`)
process.exit(failures.length === 0 ? 0 : 1)
