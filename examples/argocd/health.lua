-- Argo CD health check for drgitops.dev/DRPlan (argocd-cm key resource.customizations.health.drgitops.dev_DRPlan).
--
-- Reads what the plan's reconciler writes on this cluster: status.observedGeneration, status.phase and the
-- kstatus conditions Ready, Reconciling and Stalled. Argo CD runs it in gopher-lua (Lua 5.1) with only the base,
-- table and package libraries: no string, math or io functions are used.
--
--   no status, or status.observedGeneration < metadata.generation    Progressing  waiting for the reconciler
--   condition Stalled=True (or phase Stalled)                          Degraded     <reason>: <message>
--   phase Suspended                                                    Suspended    the Ready message
--   condition Ready=True                                               Healthy      <phase>: <Ready message>
--   Reconciling=True, or phase WaitingForStorage, WaitingForPeer,
--     Activating, Deactivating                                         Progressing  <phase>: <Ready message>
--   phase Degraded (PeerUnreachable, MigrationsBehind, ...)            Degraded     <reason>: <Ready message>
--   no conditions, phase Protected, Standby or Ready                   Healthy      <phase>
--   anything else                                                      Progressing  <phase>: <Ready message>

local function condition(status, kind)
  if status.conditions == nil then
    return nil
  end
  for _, c in ipairs(status.conditions) do
    if c.type == kind then
      return c
    end
  end
  return nil
end

local function is_true(c)
  return c ~= nil and c.status == "True"
end

-- "<head>: <text>", leaving out whichever part is missing.
local function join(head, text)
  if text == nil or text == "" then
    return head or ""
  end
  if head == nil or head == "" then
    return text
  end
  return head .. ": " .. text
end

local status = obj.status
if status == nil then
  return { status = "Progressing", message = "waiting for the reconciler: the plan has no status yet" }
end

local generation = nil
if obj.metadata ~= nil then
  generation = obj.metadata.generation
end
if generation ~= nil and (status.observedGeneration == nil or status.observedGeneration < generation) then
  local seen = "none"
  if status.observedGeneration ~= nil then
    seen = status.observedGeneration
  end
  return {
    status = "Progressing",
    message = "waiting for the reconciler to observe generation " .. generation .. " (status is of " .. seen .. ")",
  }
end

local phase = status.phase
local ready = condition(status, "Ready")
local stalled = condition(status, "Stalled")
local reconciling = condition(status, "Reconciling")
local ready_message = nil
if ready ~= nil then
  ready_message = ready.message
end

if is_true(stalled) then
  return { status = "Degraded", message = join(stalled.reason, stalled.message) }
end
if phase == "Stalled" then
  return { status = "Degraded", message = join("Stalled", ready_message) }
end
if phase == "Suspended" then
  return { status = "Suspended", message = join(nil, ready_message or "reconciliation suspended") }
end
if is_true(ready) then
  return { status = "Healthy", message = join(phase, ready_message) }
end
if is_true(reconciling)
  or phase == "WaitingForStorage"
  or phase == "WaitingForPeer"
  or phase == "Activating"
  or phase == "Deactivating"
then
  return { status = "Progressing", message = join(phase, ready_message) }
end
if phase == "Degraded" then
  local reason = "Degraded"
  if ready ~= nil and ready.reason ~= nil then
    reason = ready.reason
  end
  return { status = "Degraded", message = join(reason, ready_message) }
end
if ready == nil and (phase == "Protected" or phase == "Standby" or phase == "Ready") then
  return { status = "Healthy", message = phase }
end
return { status = "Progressing", message = join(phase, ready_message or "waiting for the reconciler") }
