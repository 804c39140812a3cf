# bash completion for brig
_brig() {
  local cur prev cmd i
  cur=${COMP_WORDS[COMP_CWORD]}
  prev=${COMP_WORDS[COMP_CWORD-1]}
  local commands="create delete events exec features help kill list network pause ps resume run spec start state update"
  local globals="--debug --log --log-format --root --systemd-cgroup --cgroup-manager --help --version"
  cmd=""
  for ((i = 1; i < COMP_CWORD; i++)); do
    case ${COMP_WORDS[i]} in
      --root|--log|--log-format|--cgroup-manager|--criu|--rootless) ((i++)) ;;
      -*) ;;
      *) cmd=${COMP_WORDS[i]}; break ;;
    esac
  done
  case $prev in
    --root|--bundle|-b) COMPREPLY=($(compgen -d -- "$cur")); return ;;
    --log|--pid-file|--console-socket) COMPREPLY=($(compgen -f -- "$cur")); return ;;
    --log-format) COMPREPLY=($(compgen -W "text json" -- "$cur")); return ;;
    --resources|-r) COMPREPLY=($(compgen -f -- "$cur")); return ;;
    --format|-f) { [ "$cmd" = list ] || [ "$cmd" = ps ] || [ "$cmd" = network ]; } && { COMPREPLY=($(compgen -W "table json" -- "$cur")); return; } ;;
  esac
  if [ -z "$cmd" ]; then
    COMPREPLY=($(compgen -W "$commands $globals" -- "$cur"))
    return
  fi
  local flags=""
  case $cmd in
    create) flags="--bundle --console-socket --pid-file --no-pivot --no-new-keyring --preserve-fds" ;;
    run) flags="--bundle --console-socket --detach --keep --pid-file --no-subreaper --no-pivot --no-new-keyring --preserve-fds" ;;
    delete) flags="--force --regex" ;;
    exec) flags="--console-socket --cwd --env --tty --user --additional-gids --process --detach --pid-file --process-label --apparmor --no-new-privs --cap --preserve-fds --cgroup --ignore-paused" ;;
    kill) flags="--all" ;;
    update) flags="--resources --blkio-weight --cpu-period --cpu-quota --cpu-share --cpu-rt-period --cpu-rt-runtime --cpuset-cpus --cpuset-mems --memory --memory-reservation --memory-swap --pids-limit --l3-cache-schema --mem-bw-schema" ;;
    events) flags="--interval --stats" ;;
    ps) flags="--format" ;;
    list) flags="--format --quiet" ;;
    spec) flags="--bundle --rootless" ;;
    network)
      local sub=""
      for ((i = i + 1; i < COMP_CWORD; i++)); do
        case ${COMP_WORDS[i]} in -*) ;; *) sub=${COMP_WORDS[i]}; break ;; esac
      done
      case $sub in
        "") COMPREPLY=($(compgen -W "ls inspect prune --help" -- "$cur")) ;;
        ls|list) COMPREPLY=($(compgen -W "--format --quiet --help" -- "$cur")) ;;
        inspect) COMPREPLY=($(compgen -W "$(brig network ls -q 2>/dev/null) --help" -- "$cur")) ;;
        *) COMPREPLY=($(compgen -W "--help" -- "$cur")) ;;
      esac
      return ;;
  esac
  if [[ $cur == -* ]]; then
    COMPREPLY=($(compgen -W "$flags --help" -- "$cur"))
  elif [ "$cmd" != spec ] && [ "$cmd" != list ]; then
    COMPREPLY=($(compgen -W "$(brig list -q 2>/dev/null)" -- "$cur"))
  fi
}
complete -F _brig brig
