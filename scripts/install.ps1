<#
.SYNOPSIS
    Install km, the Kilometers CLI, on Windows.

.DESCRIPTION
    irm https://get.kilometers.ai/install.ps1 | iex

    Piped like that, it reads its options from the environment: KM_VERSION,
    KM_INSTALL_DIR, KM_INSTALL_SOURCE (cdn or github), KM_BASE_URL (default
    https://get.kilometers.ai), KM_GITHUB_BASE_URL (default https://github.com).
    Run as a file it takes the same as parameters:

    .\install.ps1 -Version v1.2.3 -InstallDir C:\tools\km -Source cdn

    It resolves <base>/version, downloads km-windows-<arch>.exe and its .sha256
    from <base>/releases/<version>/, verifies the SHA-256 with Get-FileHash
    (refusing on a mismatch, which is never retried elsewhere), falls back to
    GitHub releases when the CDN is unreachable, answers 5xx or 404 (unless the
    source is pinned), installs atomically, adds the directory to the user PATH
    once and runs `km --version`. Errors never close the calling shell: nothing
    here calls `exit` except when the script runs as a file.

    The contract is SPEC section 8 of the release system.
#>
[CmdletBinding()]
param(
    [string]$Version = $env:KM_VERSION,
    [string]$InstallDir = $env:KM_INSTALL_DIR,
    [string]$Source = $env:KM_INSTALL_SOURCE,
    [string]$BaseUrl = $env:KM_BASE_URL,
    [string]$GitHubBaseUrl = $env:KM_GITHUB_BASE_URL,
    [switch]$Help
)

# --- release settings (rewritten by the engine when it publishes this script) ---
$BinaryName = "km"
$GithubRepository = "kilometers-ai/kilometers-cli"
$DefaultBaseUrl = "https://get.kilometers.ai"
$KeyPrincipal = "release@get.kilometers.ai"
$TrustedKeys = @"
-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE1wbWD0pmQABV8m7hcIHM3JhN5QKB
LnBs1E0o35wCC2/0cYfMA2tWBozB0y8cH4xcnTIc27BKcHfKqvOWkcY6NA==
-----END PUBLIC KEY-----
-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEEPlKU977OIK8Fd1VV9N90z+3/s2+
RsKHuLcmoyyxUnzMlov8ar/ELtFCKSxjyGTgaf9OF2nR0O3Z+OT5yNQeTg==
-----END PUBLIC KEY-----
"@
# --- end of release settings ---

$KmDefaultGitHubBaseUrl = 'https://github.com'

# The asset names: one place, matching the release matrix (km-<os>-<arch>.exe).
$KmArchMap = @{
    'X64'   = 'amd64'
    'Arm64' = 'arm64'
}

function Get-KmAssetName {
    param([string]$Arch)
    return "$BinaryName-windows-$Arch.exe"
}

function Get-KmCdnUrl {
    param([string]$Base, [string]$Version, [string]$Asset)
    return "$Base/releases/$Version/$Asset"
}

function Get-KmGitHubUrl {
    param([string]$Base, [string]$Version, [string]$Asset)
    if ($Version) {
        return "$Base/$GithubRepository/releases/download/$Version/$Asset"
    }
    return "$Base/$GithubRepository/releases/latest/download/$Asset"
}

# A download failure carries its kind in Exception.Data['KmKind']: 'missing' (404), 'server' (5xx), 'network' (no connection),
# 'garbled' (a /version that holds no version), 'other'. Only the first four fall back.
function New-KmDownloadError {
    param([string]$Message, [string]$Kind)
    $err = New-Object -TypeName System.Exception -ArgumentList $Message
    $err.Data['KmKind'] = $Kind
    return $err
}

function Get-KmErrorKind {
    param($Exception)
    if ($Exception -and $Exception.Data -and $Exception.Data.Contains('KmKind')) {
        return [string]$Exception.Data['KmKind']
    }
    return ''
}

function Write-KmInfo {
    param([string]$Message)
    Write-Host $Message
}

function Write-KmWarning {
    param([string]$Message)
    if ($env:NO_COLOR) {
        Write-Host "warning: $Message"
    } else {
        Write-Host "warning: $Message" -ForegroundColor Yellow
    }
}

function Show-KmUsage {
    Write-Host @"
Install km, the Kilometers CLI.

usage: irm $DefaultBaseUrl/install.ps1 | iex
       .\install.ps1 [-Version V] [-InstallDir DIR] [-Source cdn|github] [-Help]

  -Version V        install version V (e.g. v1.2.3) instead of the current one  (KM_VERSION)
  -InstallDir DIR   where km.exe goes (default: %LOCALAPPDATA%\Programs\km)    (KM_INSTALL_DIR)
  -Source S         cdn or github: download only from there                     (KM_INSTALL_SOURCE)
  -BaseUrl URL      the CDN (default $DefaultBaseUrl)                          (KM_BASE_URL)
  -GitHubBaseUrl U  GitHub (default $KmDefaultGitHubBaseUrl)                     (KM_GITHUB_BASE_URL)
"@
}

function ConvertTo-KmVersion {
    param([string]$Value)
    $v = $Value.Trim()
    if ($v -match '^[0-9]') {
        $v = "v$v"
    }
    if ($v -notmatch '^v(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(-[0-9A-Za-z]+(\.[0-9A-Za-z-]+)*)?$') {
        return $null
    }
    return $v
}

function Assert-KmUrl {
    param([string]$What, [string]$Url)
    $uri = $null
    if (-not [System.Uri]::TryCreate($Url, [System.UriKind]::Absolute, [ref]$uri)) {
        throw "$What is not a URL: '$Url'"
    }
    if ($uri.Scheme -eq 'https') {
        return
    }
    if ($uri.Scheme -eq 'http' -and $uri.IsLoopback) {
        return
    }
    if ($uri.Scheme -eq 'http') {
        throw "refusing plain http:// for $What ($Url): use https://; http:// is only accepted for loopback (127.0.0.1, localhost, [::1])"
    }
    throw "$What must be an https:// URL, not '$Url'"
}

function Get-KmArch {
    $arch = $null
    try {
        $arch = [string][System.Runtime.InteropServices.RuntimeInformation]::OSArchitecture
    } catch {
        # Windows PowerShell on an old .NET Framework: ask the environment instead.
        $arch = $null
    }
    # An x64 process emulated on Windows on Arm may be told X64: the environment knows better.
    if ($env:PROCESSOR_ARCHITEW6432 -eq 'ARM64' -or $env:PROCESSOR_ARCHITECTURE -eq 'ARM64') {
        $arch = 'Arm64'
    }
    if (-not $arch) {
        if ($env:PROCESSOR_ARCHITECTURE -eq 'AMD64') {
            $arch = 'X64'
        } else {
            $arch = [string]$env:PROCESSOR_ARCHITECTURE
        }
    }
    if (-not $KmArchMap.ContainsKey($arch)) {
        throw "unsupported platform windows/$arch`: km is built for windows on amd64 and arm64; see $script:KmReleasesPage to download a build by hand"
    }
    return $KmArchMap[$arch]
}

function Invoke-KmDownload {
    param([string]$Url, [string]$OutFile)
    Assert-KmUrl 'download URL' $Url
    try {
        Invoke-WebRequest -Uri $Url -OutFile $OutFile -UseBasicParsing -MaximumRedirection 10 -ErrorAction Stop
    } catch {
        Remove-Item -LiteralPath $OutFile -Force -ErrorAction SilentlyContinue
        $ex = $_.Exception
        $status = $null
        if ($ex.PSObject.Properties['Response'] -and $ex.Response) {
            try {
                $status = [int]$ex.Response.StatusCode
            } catch {
                $status = $null
            }
        }
        if ($status) {
            if ($status -eq 404) {
                throw (New-KmDownloadError "${Url}: HTTP 404" 'missing')
            }
            if ($status -ge 500 -and $status -le 599) {
                throw (New-KmDownloadError "${Url}: HTTP $status" 'server')
            }
            throw (New-KmDownloadError "${Url}: HTTP $status" 'other')
        }
        $kind = 'other'
        $inner = $ex
        while ($inner) {
            if ($inner -is [System.Net.Sockets.SocketException]) {
                $kind = 'network'
            }
            if ($inner -is [System.Net.WebException]) {
                $webStatus = [string]$inner.Status
                if ($webStatus -in @('ConnectFailure', 'NameResolutionFailure', 'ProxyNameResolutionFailure', 'Timeout')) {
                    $kind = 'network'
                }
            }
            $inner = $inner.InnerException
        }
        throw (New-KmDownloadError "${Url}: $($ex.Message)" $kind)
    }
}

function Get-KmCurrentVersion {
    param([string]$Base, [string]$TempDir)
    $file = Join-Path $TempDir 'version'
    Invoke-KmDownload "$Base/version" $file
    $text = [System.IO.File]::ReadAllText($file)
    $v = ConvertTo-KmVersion (($text -split "`n")[0])
    if (-not $v) {
        throw (New-KmDownloadError "$Base/version does not hold a version" 'garbled')
    }
    return $v
}

function Save-KmFiles {
    # Download <Url>.sha256 and <Url> into the temporary names.
    param([string]$Url, [string]$ShaFile, [string]$BinFile)
    Invoke-KmDownload "$Url.sha256" $ShaFile
    Write-KmInfo "downloading $Url"
    Invoke-KmDownload $Url $BinFile
}

function Test-KmFallback {
    param($ErrorRecord)
    return (Get-KmErrorKind $ErrorRecord.Exception) -in @('missing', 'server', 'network', 'garbled')
}

function Confirm-KmHash {
    param([string]$ShaFile, [string]$BinFile, [string]$Asset, [string]$Url)
    $line = ([System.IO.File]::ReadAllText($ShaFile) -split "`n")[0]
    $want = ($line.Trim() -split '\s+')[0]
    if ($want -notmatch '^[0-9a-fA-F]{64}$') {
        throw "cannot verify ${Asset}: $Url.sha256 is not a SHA-256 checksum file; refusing to install"
    }
    $want = $want.ToLowerInvariant()
    $got = (Get-FileHash -Algorithm SHA256 -LiteralPath $BinFile).Hash.ToLowerInvariant()
    if ($got -ne $want) {
        throw "checksum mismatch for $Asset from ${Url}: expected sha256 $want, got $got; refusing to install (not retried from another source)"
    }
    Write-KmInfo "verified sha256 $got"
}

function Add-KmUserPath {
    # The user PATH in the registry, unexpanded (so %USERPROFILE%-style entries survive), once.
    param([string]$Dir)
    $key = Get-Item -LiteralPath 'HKCU:\Environment'
    $raw = [string]$key.GetValue('Path', '', [Microsoft.Win32.RegistryValueOptions]::DoNotExpandEnvironmentNames)
    $entries = @($raw -split ';' | Where-Object { $_ -ne '' })
    $norm = $Dir.TrimEnd('\')
    foreach ($entry in $entries) {
        if ([System.Environment]::ExpandEnvironmentVariables($entry).TrimEnd('\') -ieq $norm) {
            return $false
        }
    }
    $new = (@($entries) + $Dir) -join ';'
    Set-ItemProperty -LiteralPath 'HKCU:\Environment' -Name 'Path' -Value $new -Type ExpandString
    # Tell running programs (Explorer, new terminals) that the environment changed.
    [System.Environment]::SetEnvironmentVariable('KM_INSTALL_PATH_REFRESH', '1', 'User')
    [System.Environment]::SetEnvironmentVariable('KM_INSTALL_PATH_REFRESH', $null, 'User')
    return $true
}

function Install-KmBinary {
    param([string]$BinFile, [string]$Dest)
    if (Test-Path -LiteralPath $Dest -PathType Container) {
        throw "$Dest is a directory: remove it or choose another -InstallDir"
    }
    try {
        Move-Item -LiteralPath $BinFile -Destination $Dest -Force -ErrorAction Stop
    } catch {
        # A running km.exe cannot be replaced, but it can be renamed aside.
        $aside = "$Dest.old"
        Remove-Item -LiteralPath $aside -Force -ErrorAction SilentlyContinue
        Rename-Item -LiteralPath $Dest -NewName (Split-Path -Leaf $aside) -ErrorAction Stop
        Move-Item -LiteralPath $BinFile -Destination $Dest -Force -ErrorAction Stop
    }
}

function Install-Km {
    param(
        [string]$Version,
        [string]$InstallDir,
        [string]$Source,
        [string]$BaseUrl,
        [string]$GitHubBaseUrl
    )
    # Both only for this function's scope: under iex the caller's session keeps its own settings.
    Set-StrictMode -Version 2.0
    $ProgressPreference = 'SilentlyContinue'  # the progress bar makes Invoke-WebRequest many times slower
    try {
        [System.Net.ServicePointManager]::SecurityProtocol = [System.Net.ServicePointManager]::SecurityProtocol -bor [System.Net.SecurityProtocolType]::Tls12
    } catch {
        Write-Verbose 'TLS 1.2 is already the default here'
    }

    if (-not $BaseUrl) { $BaseUrl = $DefaultBaseUrl }
    if (-not $GitHubBaseUrl) { $GitHubBaseUrl = $KmDefaultGitHubBaseUrl }
    $BaseUrl = $BaseUrl.TrimEnd('/')
    $GitHubBaseUrl = $GitHubBaseUrl.TrimEnd('/')
    $script:KmReleasesPage = "$GitHubBaseUrl/$GithubRepository/releases"

    if (-not $Source -or $Source -eq 'auto') {
        $Source = 'auto'
    } elseif ($Source -notin @('cdn', 'github')) {
        throw "unknown source '$Source': use -Source cdn or -Source github"
    }
    if ($Source -ne 'github') { Assert-KmUrl 'KM_BASE_URL' $BaseUrl }
    if ($Source -ne 'cdn') { Assert-KmUrl 'KM_GITHUB_BASE_URL' $GitHubBaseUrl }

    $wanted = $null
    if ($Version -and $Version -ne 'latest') {
        $wanted = ConvertTo-KmVersion $Version
        if (-not $wanted) {
            throw "'$Version' is not a version: use the form v1.2.3 (or v1.2.3-rc.1)"
        }
    }

    $isWin = $true
    if (Get-Variable -Name IsWindows -ErrorAction SilentlyContinue) {
        $isWin = [bool]$IsWindows
    }
    if (-not $isWin) {
        throw "install.ps1 is for Windows; on Linux and macOS run: curl -sSL $BaseUrl | sh"
    }

    $arch = Get-KmArch
    $asset = Get-KmAssetName $arch

    if (-not $InstallDir) {
        $InstallDir = Join-Path $env:LOCALAPPDATA 'Programs\km'
    }
    $InstallDir = [System.IO.Path]::GetFullPath($InstallDir)
    try {
        New-Item -ItemType Directory -Force -Path $InstallDir -ErrorAction Stop | Out-Null
        $probe = Join-Path $InstallDir ('.km-install-' + [System.Guid]::NewGuid().ToString('N'))
        New-Item -ItemType Directory -Path $probe -ErrorAction Stop | Out-Null
    } catch {
        throw "cannot write to $InstallDir ($($_.Exception.Message)): run as a user who can, or choose another directory with -InstallDir (or `$env:KM_INSTALL_DIR)"
    }
    $tempDir = $probe
    $shaFile = Join-Path $tempDir "$asset.sha256"
    $binFile = Join-Path $tempDir "$BinaryName.exe"
    $dest = Join-Path $InstallDir "$BinaryName.exe"
    try {
        $url = $null
        $cdnNote = ''
        if ($Source -ne 'github') {
            try {
                $v = $wanted
                if (-not $v) {
                    $v = Get-KmCurrentVersion $BaseUrl $tempDir
                }
                Write-KmInfo "installing km $v for windows/$arch from $BaseUrl"
                $cdnUrl = Get-KmCdnUrl $BaseUrl $v $asset
                Save-KmFiles $cdnUrl $shaFile $binFile
                $url = $cdnUrl
            } catch {
                if ($Source -eq 'cdn' -or -not (Test-KmFallback $_)) {
                    throw
                }
                Write-KmWarning "the CDN failed ($($_.Exception.Message)); trying GitHub releases"
                $cdnNote = '; the CDN failed too'
            }
        }
        if (-not $url) {
            if ($wanted) {
                Write-KmInfo "installing km $wanted for windows/$arch from GitHub"
            } else {
                Write-KmInfo "installing the latest km for windows/$arch from GitHub"
            }
            $ghUrl = Get-KmGitHubUrl $GitHubBaseUrl $wanted $asset
            try {
                Save-KmFiles $ghUrl $shaFile $binFile
                $url = $ghUrl
            } catch {
                if ((Get-KmErrorKind $_.Exception) -eq 'missing' -and $wanted) {
                    throw "km $wanted for windows/$arch is not published ($($_.Exception.Message)$cdnNote); releases: $script:KmReleasesPage"
                }
                throw "download from GitHub failed ($($_.Exception.Message)$cdnNote)"
            }
        }

        Confirm-KmHash $shaFile $binFile $asset $url
        Install-KmBinary $binFile $dest
        Write-KmInfo "installed $dest"

        if (Add-KmUserPath $InstallDir) {
            Write-KmInfo "added $InstallDir to your user PATH (new terminals will see it)"
        }
        $sessionEntries = @($env:Path -split ';' | Where-Object { $_ -ne '' } | ForEach-Object { $_.TrimEnd('\') })
        if ($sessionEntries -notcontains $InstallDir.TrimEnd('\')) {
            $env:Path = "$InstallDir;$env:Path"
        }
        $first = Get-Command km -CommandType Application -ErrorAction SilentlyContinue | Select-Object -First 1
        if ($first -and ($first.Source -ne $dest)) {
            Write-KmWarning "another km at $($first.Source) comes earlier on PATH and will run instead of ${dest}: remove it or reorder PATH"
        }

        & $dest --version
        if ($LASTEXITCODE -ne 0) {
            throw "$dest was installed but '$dest --version' failed (exit $LASTEXITCODE)"
        }
    } finally {
        Remove-Item -LiteralPath $tempDir -Recurse -Force -ErrorAction SilentlyContinue
    }
}

# ----------------------------------------------------------------------------
# Top level: the only place errors are reported. Under `irm | iex` a failure is
# one red line and control returns to the user's prompt; `exit` is used only
# when this runs as a script file (where it ends that script, not the shell).

if ($Help) {
    Show-KmUsage
    return
}
$KmFailed = $false
try {
    Install-Km -Version $Version -InstallDir $InstallDir -Source $Source -BaseUrl $BaseUrl -GitHubBaseUrl $GitHubBaseUrl
} catch {
    $KmFailed = $true
    $message = $_.Exception.Message
    if ($env:NO_COLOR) {
        Write-Host "error: $message"
    } else {
        Write-Host "error: $message" -ForegroundColor Red
    }
}
if ($KmFailed -and $PSCommandPath) {
    exit 1  # allowed: a script file, never the iex'd text (where $PSCommandPath is empty)
}
