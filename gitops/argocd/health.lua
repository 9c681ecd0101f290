-- Argo CD health check for ferry.dev/SyncTask (resource.customizations.health.ferry.dev_SyncTask).
-- Maps the operator's status to Argo CD's health, kstatus style:
--   spec not yet observed (observedGeneration < generation) -> Progressing
--   phase Failed, or condition Stalled=True                 -> Degraded
--   phase Paused (spec.paused, perhaps until resumeAt)       -> Suspended
--   condition Degraded=True (lag or error rate too high)    -> Degraded
--   phase Completed (a snapshot-only task finished)          -> Healthy
--   phase Scheduled (waiting for its first scheduled run)   -> Healthy
--   phase Running and Ready=True                             -> Healthy
--   anything else (Pending, Starting, Snapshotting, ...)     -> Progressing
local hs = { status = "Progressing", message = "Waiting for the Ferry operator" }
if obj.status == nil then
  return hs
end
local status = obj.status

local generation = obj.metadata and obj.metadata.generation
if generation ~= nil and (status.observedGeneration == nil or status.observedGeneration < generation) then
  hs.message = "Waiting for the Ferry operator to observe generation " .. tostring(math.floor(generation))
  return hs
end

local conditions = {}
if status.conditions ~= nil then
  for _, condition in ipairs(status.conditions) do
    conditions[condition.type] = condition
  end
end

-- "Reason: message" of a condition, or the fallback when it says nothing.
local function describe(condition, fallback)
  if condition == nil then
    return fallback
  end
  local text = condition.reason or fallback
  if condition.message ~= nil and condition.message ~= "" then
    text = text .. ": " .. condition.message
  end
  return text
end

local function is_true(condition)
  return condition ~= nil and condition.status == "True"
end

local phase = status.phase or "Pending"
local ready = conditions["Ready"]

if phase == "Failed" then
  hs.status = "Degraded"
  hs.message = describe(conditions["Stalled"] or ready, "Failed")
  return hs
end
if is_true(conditions["Stalled"]) then
  hs.status = "Degraded"
  hs.message = describe(conditions["Stalled"], "Stalled")
  return hs
end
if phase == "Paused" then
  hs.status = "Suspended"
  hs.message = describe(ready, "Paused")
  if status.scheduledResume ~= nil then
    hs.message = hs.message .. " (resumes at " .. status.scheduledResume .. ")"
  end
  return hs
end
if is_true(conditions["Degraded"]) then
  hs.status = "Degraded"
  hs.message = describe(conditions["Degraded"], "Degraded")
  return hs
end
if phase == "Completed" or phase == "Scheduled" then
  hs.status = "Healthy"
  hs.message = describe(ready, phase)
  return hs
end
if phase == "Running" and is_true(ready) then
  hs.status = "Healthy"
  hs.message = describe(ready, "Running")
  return hs
end

hs.message = phase
if phase == "Snapshotting" and status.progress ~= nil and status.progress.percent ~= nil then
  hs.message = hs.message .. " " .. tostring(math.floor(status.progress.percent)) .. "%"
  if status.progress.eta ~= nil then
    hs.message = hs.message .. ", ETA " .. tostring(status.progress.eta)
  end
end
if ready ~= nil and ready.status ~= "True" and ready.message ~= nil and ready.message ~= "" then
  hs.message = hs.message .. ": " .. ready.message
end
return hs
