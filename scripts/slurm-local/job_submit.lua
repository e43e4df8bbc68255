-- Job-submit filter of the one-machine cluster (scripts/slurm-local.sh): a job that asks for a GPU must go to
-- partition `gpu`, and a job in `gpu` must ask for one, so a rule the SLURM profile routes wrongly fails at sbatch
-- with this message instead of running unnoticed on the wrong partition. No partition means the default, `cpu`.

-- Whether any of the job's trackable-resource requests (--gpus, --gres, --gpus-per-node, ...) names a GPU.
local function wants_gpu(job_desc)
   for _, tres in ipairs({job_desc.tres_per_job, job_desc.tres_per_node, job_desc.tres_per_socket,
                          job_desc.tres_per_task}) do
      if tres ~= nil and string.find(tres, "gpu") then
         return true
      end
   end
   return false
end

function slurm_job_submit(job_desc, part_list, submit_uid)
   local partition = job_desc.partition or "cpu"
   local gpu = wants_gpu(job_desc)
   if gpu and partition ~= "gpu" then
      slurm.log_user("tunebench cluster: job '%s' asks for a GPU but is in partition '%s'; GPU jobs go to 'gpu'",
                     job_desc.comment or job_desc.name or "?", partition)
      return slurm.ERROR
   end
   if partition == "gpu" and not gpu then
      slurm.log_user("tunebench cluster: job '%s' is in partition 'gpu' but asks for no GPU; CPU jobs go to 'cpu'",
                     job_desc.comment or job_desc.name or "?")
      return slurm.ERROR
   end
   return slurm.SUCCESS
end

function slurm_job_modify(job_desc, job_rec, part_list, modify_uid)
   return slurm.SUCCESS
end

slurm.log_info("tunebench job_submit.lua loaded")
return slurm.SUCCESS
