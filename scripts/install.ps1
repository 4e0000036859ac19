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

    It resolves <base>/version, downloads SHA256SUMS and SHA256SUMS.p256 from
    <base>/releases/<version>/ and verifies the signature with .NET's ECDsa against
    the keys in the release settings below (Windows PowerShell 5.1 and PowerShell 7),
    then km-windows-<arch>.exe and its .sha256, whose SHA-256 must be the one both
    name for that file (refusing otherwise, never retried elsewhere). It falls back
    to GitHub releases when the CDN is unreachable, stalls, answers 5xx or 404
    (unless the source is pinned), runs the new km.exe --version from its temporary
    path before it replaces anything, adds the directory to the user PATH once.
    Errors never close the calling shell (or the caller's script under iex): `exit`
    is used only when this file itself runs as a script.

    The contract is SPEC section 8 of the release system.
#>
[CmdletBinding()]
param(
    [string]$Version = $env:KM_VERSION,
    [string]$InstallDir = $env:KM_INSTALL_DIR,
    [string]$Source = $env:KM_INSTALL_SOURCE,
    [string]$BaseUrl = $env:KM_BASE_URL,
    [string]$GitHubBaseUrl = $env:KM_GITHUB_BASE_URL,
    [switch]$RequireSignature,
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

# Bounds (README "Installing km"): connect + headers and each small file 30 s; the binary
# 30 s plus its size cap at 64 KiB/s; PowerShell 7.4+ also ends a transfer that moves
# nothing for 20 s. At most 5 redirects; sizes capped as in install.sh.
$KmSmallTimeoutSec = 30
$KmStallSec = 20
$KmMaxRedirects = 5
$KmMaxVersionBytes = 256
$KmMaxSha256Bytes = 1024
$KmMaxSumsBytes = 65536
$KmMaxSigBytes = 8192
$KmMaxBinaryBytes = 104857600
$KmBinaryTimeoutSec = 30 + [int]($KmMaxBinaryBytes / 65536)
$KmRunTimeoutSec = 10

# The asset names: one place, matching the release matrix (km-<os>-<arch>.exe).
# Keys: RuntimeInformation.OSArchitecture names and PROCESSOR_ARCHITECTURE/W6432 values
# (hashtable keys are case-insensitive: ARM64 finds Arm64).
$KmArchMap = @{
    'X64'   = 'amd64'
    'AMD64' = 'amd64'
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

# A download failure carries its kind in Exception.Data['KmKind']: 'missing' (404), 'server' (5xx), 'network' (no connection,
# a stall or a timeout), 'garbled' (a /version that holds no version), 'other'. Only the first four fall back.
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
       .\install.ps1 [-Version V] [-InstallDir DIR] [-Source cdn|github] [-RequireSignature] [-Help]

  -Version V         install version V (e.g. v1.2.3) instead of the current one  (KM_VERSION)
  -InstallDir DIR    where km.exe goes (default: %LOCALAPPDATA%\Programs\km)    (KM_INSTALL_DIR)
  -Source S          cdn or github: download only from there                     (KM_INSTALL_SOURCE)
  -RequireSignature  refuse when this installer carries no release keys          (KM_REQUIRE_SIGNATURE=1)
  -BaseUrl URL       the CDN (default $DefaultBaseUrl)                           (KM_BASE_URL)
  -GitHubBaseUrl U   GitHub (default $KmDefaultGitHubBaseUrl)                    (KM_GITHUB_BASE_URL)
"@
}

# The one version grammar (ASCII only, no leading zeros): -cmatch is case-sensitive, \z ends the text.
$KmVersionPattern = '^v(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(-(0|[1-9][0-9]*|[0-9]*[A-Za-z-][0-9A-Za-z-]*)(\.(0|[1-9][0-9]*|[0-9]*[A-Za-z-][0-9A-Za-z-]*))*)?\z'

function ConvertTo-KmVersion {
    param([string]$Value)
    $v = $Value.Trim()
    if ($v -cmatch '^[0-9]') {
        $v = "v$v"
    }
    if ($v -cnotmatch $KmVersionPattern) {
        return $null
    }
    return $v
}

# Server text in messages: printable ASCII only, cut short.
function Get-KmExcerpt {
    param([string]$Text, [int]$Max = 60)
    $clean = [regex]::Replace([string]$Text, '[^\x20-\x7E]', '?')
    if ($clean.Length -gt $Max) {
        return $clean.Substring(0, $Max) + '...'
    }
    return $clean
}

function Test-KmUrl {
    param([string]$Url)
    $uri = $null
    if (-not [System.Uri]::TryCreate($Url, [System.UriKind]::Absolute, [ref]$uri)) {
        return $false
    }
    return ($uri.Scheme -eq 'https') -or ($uri.Scheme -eq 'http' -and $uri.IsLoopback)
}

function Assert-KmUrl {
    param([string]$What, [string]$Url)
    $uri = $null
    $shown = Get-KmExcerpt $Url 100
    if (-not [System.Uri]::TryCreate($Url, [System.UriKind]::Absolute, [ref]$uri)) {
        throw "$What is not a URL: '$shown'"
    }
    if (Test-KmUrl $Url) {
        return
    }
    if ($uri.Scheme -eq 'http') {
        throw "refusing plain http:// for $What ($shown): use https://; http:// is only accepted for loopback (127.0.0.1, localhost, [::1])"
    }
    throw "$What must be an https:// URL, not '$shown'"
}

# The release arch, by these rules in this order:
# 1. PROCESSOR_ARCHITEW6432: set in a 32-bit process on 64-bit Windows, it names the machine;
# 2. PROCESSOR_IDENTIFIER starting "ARMv8": Windows on Arm, even in an emulated x64 process
#    (whose PROCESSOR_ARCHITECTURE says AMD64 and whose older .NET says X64);
# 3. RuntimeInformation.OSArchitecture where .NET has it (4.7.1+, PowerShell 7);
# 4. PROCESSOR_ARCHITECTURE.
function Get-KmArch {
    $arch = $env:PROCESSOR_ARCHITEW6432
    if (-not $arch -and ([string]$env:PROCESSOR_IDENTIFIER).StartsWith('ARMv8')) {
        $arch = 'ARM64'
    }
    if (-not $arch) {
        try {
            $arch = [string][System.Runtime.InteropServices.RuntimeInformation]::OSArchitecture
        } catch {
            $arch = $null  # Windows PowerShell on an old .NET Framework: no RuntimeInformation
        }
    }
    if (-not $arch) {
        $arch = [string]$env:PROCESSOR_ARCHITECTURE
    }
    if (-not $KmArchMap.ContainsKey($arch)) {
        throw "unsupported platform windows/$(Get-KmExcerpt $arch 20): km is built for windows on amd64 and arm64; see $script:KmReleasesPage to download a build by hand"
    }
    return $KmArchMap[$arch]
}

# The install directory: relative paths against PowerShell's current location (not the process's).
function Resolve-KmInstallDir {
    param([string]$Dir)
    if (-not $Dir) {
        $Dir = Join-Path $env:LOCALAPPDATA 'Programs\km'
    }
    return $ExecutionContext.SessionState.Path.GetUnresolvedProviderPathFromPSPath($Dir)
}

function Get-KmWebOptions {
    param([int]$TimeoutSec)
    $options = @{
        UseBasicParsing    = $true
        MaximumRedirection = $KmMaxRedirects
        TimeoutSec         = $TimeoutSec
        ErrorAction        = 'Stop'
    }
    $iwr = Get-Command Invoke-WebRequest
    if ($iwr.Parameters.ContainsKey('OperationTimeoutSeconds')) {
        # PowerShell 7.4+: a transfer with no progress for this long is down.
        $options['OperationTimeoutSeconds'] = $KmStallSec
        $options['ConnectionTimeoutSeconds'] = $KmSmallTimeoutSec
        $options.Remove('TimeoutSec')
    }
    return $options
}

# The URL a response finally came from (after redirects): PowerShell 7, then Windows PowerShell 5.1.
function Get-KmFinalUrl {
    param($Response, [string]$Url)
    $base = $Response.BaseResponse
    if ($base -and $base.PSObject.Properties['RequestMessage'] -and $base.RequestMessage) {
        return [string]$base.RequestMessage.RequestUri
    }
    if ($base -and $base.PSObject.Properties['ResponseUri'] -and $base.ResponseUri) {
        return [string]$base.ResponseUri
    }
    return $Url
}

function Invoke-KmDownload {
    param([string]$Url, [string]$OutFile, [long]$MaxBytes, [int]$TimeoutSec = $KmSmallTimeoutSec)
    Assert-KmUrl 'download URL' $Url
    $options = Get-KmWebOptions $TimeoutSec
    try {
        $response = Invoke-WebRequest -Uri $Url -OutFile $OutFile -PassThru @options
    } catch {
        Remove-Item -LiteralPath $OutFile -Force -ErrorAction SilentlyContinue
        throw (ConvertTo-KmDownloadError $_.Exception $Url)
    }
    $final = Get-KmFinalUrl $response $Url
    if (-not (Test-KmUrl $final)) {
        Remove-Item -LiteralPath $OutFile -Force -ErrorAction SilentlyContinue
        throw (New-KmDownloadError "${Url}: redirected to $(Get-KmExcerpt $final 100): only https:// (or loopback http://) is accepted" 'insecure')
    }
    if ((Get-Item -LiteralPath $OutFile).Length -gt $MaxBytes) {
        Remove-Item -LiteralPath $OutFile -Force -ErrorAction SilentlyContinue
        throw (New-KmDownloadError "${Url}: larger than $MaxBytes bytes" 'oversize')
    }
    return $final
}

function ConvertTo-KmDownloadError {
    param($Exception, [string]$Url)
    $status = $null
    if ($Exception.PSObject.Properties['Response'] -and $Exception.Response) {
        try {
            $status = [int]$Exception.Response.StatusCode
        } catch {
            $status = $null
        }
    }
    if ($status) {
        $kind = 'other'
        if ($status -eq 404) { $kind = 'missing' }
        if ($status -ge 500 -and $status -le 599) { $kind = 'server' }
        return (New-KmDownloadError "${Url}: HTTP $status" $kind)
    }
    $kind = 'other'
    $inner = $Exception
    while ($inner) {
        if ($inner -is [System.Net.Sockets.SocketException] -or $inner -is [System.TimeoutException] -or
            $inner -is [System.Threading.Tasks.TaskCanceledException] -or $inner -is [System.IO.IOException]) {
            $kind = 'network'
        }
        if ($inner -is [System.Net.WebException]) {
            $webStatus = [string]$inner.Status
            if ($webStatus -in @('ConnectFailure', 'NameResolutionFailure', 'ProxyNameResolutionFailure', 'Timeout', 'ReceiveFailure')) {
                $kind = 'network'
            }
        }
        $inner = $inner.InnerException
    }
    return (New-KmDownloadError "${Url}: $(Get-KmExcerpt $Exception.Message 120)" $kind)
}

function Get-KmCurrentVersion {
    param([string]$Base, [string]$TempDir)
    $file = Join-Path $TempDir 'version'
    try {
        $null = Invoke-KmDownload "$Base/version" $file $KmMaxVersionBytes
    } catch {
        if ((Get-KmErrorKind $_.Exception) -eq 'oversize') {
            throw (New-KmDownloadError $_.Exception.Message 'garbled')
        }
        throw
    }
    $text = [System.IO.File]::ReadAllText($file)
    $first = ($text -split "`n")[0]
    $v = ConvertTo-KmVersion $first
    if (-not $v -or $first.Trim() -cnotmatch '^v') {
        throw (New-KmDownloadError "$Base/version does not hold a version ('$(Get-KmExcerpt $first 40)')" 'garbled')
    }
    return $v
}

function Test-KmFallback {
    param($ErrorRecord)
    return (Get-KmErrorKind $ErrorRecord.Exception) -in @('missing', 'server', 'network', 'garbled')
}

# ----------------------------------------------------------------------------
# signatures: SHA256SUMS.p256 is a DER ECDSA P-256 signature (SHA-256) over
# "km-release-<v>`n" + SHA256SUMS, by one of the keys of $TrustedKeys.

function Get-KmTrustedKeys {
    $keys = @()
    $pattern = '-----BEGIN PUBLIC KEY-----(?<body>[A-Za-z0-9+/=\s]+)-----END PUBLIC KEY-----'
    foreach ($m in [regex]::Matches($TrustedKeys, $pattern)) {
        $keys += , [System.Convert]::FromBase64String(($m.Groups['body'].Value -replace '\s', ''))
    }
    return , $keys
}

# The SubjectPublicKeyInfo prefix of every P-256 key; the uncompressed point 04||X||Y follows.
$KmP256SpkiPrefix = [byte[]](0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x02, 0x01, 0x06, 0x08,
    0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00, 0x04)

# An ECDsa for a P-256 SubjectPublicKeyInfo, built from its point (Windows PowerShell 5.1 has no
# ImportSubjectPublicKeyInfo): ECParameters on .NET 4.7+ and PowerShell 7, else a CNG public blob.
function New-KmEcdsa {
    param([byte[]]$Spki)
    if ($Spki.Length -ne 91) {
        throw 'a trusted key is not an ECDSA P-256 public key'
    }
    for ($i = 0; $i -lt $KmP256SpkiPrefix.Length; $i++) {
        if ($Spki[$i] -ne $KmP256SpkiPrefix[$i]) {
            throw 'a trusted key is not an ECDSA P-256 public key'
        }
    }
    $x = [byte[]]$Spki[27..58]
    $y = [byte[]]$Spki[59..90]
    try {
        $point = New-Object System.Security.Cryptography.ECPoint
        $point.X = $x
        $point.Y = $y
        $parameters = New-Object System.Security.Cryptography.ECParameters
        $parameters.Curve = [System.Security.Cryptography.ECCurve]::CreateFromValue('1.2.840.10045.3.1.7')  # P-256
        $parameters.Q = $point
        return [System.Security.Cryptography.ECDsa]::Create($parameters)
    } catch {
        # BCRYPT_ECCPUBLIC_BLOB: "ECS1", the key length (32), X, Y.
        $blob = [byte[]](0x45, 0x43, 0x53, 0x31, 0x20, 0x00, 0x00, 0x00) + $x + $y
        $cng = [System.Security.Cryptography.CngKey]::Import([byte[]]$blob, [System.Security.Cryptography.CngKeyBlobFormat]::EccPublicBlob)
        return New-Object System.Security.Cryptography.ECDsaCng -ArgumentList $cng
    }
}

# One DER INTEGER of an ECDSA signature as 32 big-endian bytes.
function ConvertFrom-KmDerInteger {
    param([byte[]]$Der, [int]$At)
    if ($At + 2 -gt $Der.Length -or $Der[$At] -ne 0x02) {
        throw 'not a DER signature'
    }
    $length = [int]$Der[$At + 1]
    if ($length -lt 1 -or $length -gt 33 -or $At + 2 + $length -gt $Der.Length) {
        throw 'not a DER signature'
    }
    $value = [byte[]]$Der[($At + 2)..($At + 1 + $length)]
    while ($value.Length -gt 32 -and $value[0] -eq 0) {
        $value = [byte[]]$value[1..($value.Length - 1)]
    }
    if ($value.Length -gt 32) {
        throw 'not a DER signature'
    }
    $out = New-Object byte[] 32
    [System.Array]::Copy($value, 0, $out, 32 - $value.Length, $value.Length)
    return , @{ Bytes = $out; Next = $At + 2 + $length }
}

# DER SEQUENCE { INTEGER r, INTEGER s } (what openssl writes) to IEEE P1363 r||s (what VerifyData takes).
function ConvertFrom-KmDerSignature {
    param([byte[]]$Der)
    if ($Der.Length -lt 8 -or $Der[0] -ne 0x30 -or [int]$Der[1] -ne $Der.Length - 2) {
        throw 'not a DER signature'
    }
    $r = ConvertFrom-KmDerInteger $Der 2
    $s = ConvertFrom-KmDerInteger $Der $r.Next
    if ($s.Next -ne $Der.Length) {
        throw 'not a DER signature'
    }
    return , [byte[]]($r.Bytes + $s.Bytes)
}

# $true when SHA256SUMS.p256 is a signature of release $Version's SHA256SUMS by a trusted key.
function Test-KmSignature {
    param([string]$SumsFile, [string]$SigFile, [string]$Version)
    $statement = [byte[]]([System.Text.Encoding]::ASCII.GetBytes("km-release-$Version`n") + [System.IO.File]::ReadAllBytes($SumsFile))
    try {
        $signature = ConvertFrom-KmDerSignature ([System.IO.File]::ReadAllBytes($SigFile))
    } catch {
        return $false
    }
    foreach ($spki in (Get-KmTrustedKeys)) {
        $ecdsa = New-KmEcdsa $spki
        if ($ecdsa.VerifyData($statement, $signature, [System.Security.Cryptography.HashAlgorithmName]::SHA256)) {
            return $true
        }
    }
    return $false
}

# ----------------------------------------------------------------------------
# checksums

# "<64 hex>  NAME" (or " *NAME") → @{ Hash = lowercase; Name = NAME }, else $null.
function ConvertFrom-KmChecksumLine {
    param([string]$Line)
    $m = [regex]::Match($Line.TrimEnd("`r"), '^([0-9A-Fa-f]{64}) [ *](.+)\z')
    if (-not $m.Success) {
        return $null
    }
    return @{ Hash = $m.Groups[1].Value.ToLowerInvariant(); Name = $m.Groups[2].Value }
}

function Get-KmSumsEntry {
    param([string]$SumsFile, [string]$Asset, [string]$Version)
    $hash = $null
    foreach ($line in ([System.IO.File]::ReadAllText($SumsFile) -split "`n")) {
        if ($line.Trim() -eq '') { continue }
        $entry = ConvertFrom-KmChecksumLine $line
        if (-not $entry) {
            throw "cannot verify ${Asset}: SHA256SUMS of km $Version is not a checksum list; refusing to install"
        }
        if ($entry.Name -ceq $Asset) {
            if ($hash) {
                throw "cannot verify ${Asset}: SHA256SUMS of km $Version lists it twice; refusing to install"
            }
            $hash = $entry.Hash
        }
    }
    if (-not $hash) {
        throw "cannot verify ${Asset}: SHA256SUMS of km $Version does not list it; refusing to install"
    }
    return $hash
}

function Get-KmSideEntry {
    param([string]$ShaFile, [string]$Asset, [string]$Url)
    $lines = @([System.IO.File]::ReadAllText($ShaFile) -split "`n" | Where-Object { $_.Trim() -ne '' })
    $entry = $null
    if ($lines.Count -eq 1) {
        $entry = ConvertFrom-KmChecksumLine $lines[0]
    }
    if (-not $entry) {
        throw "cannot verify ${Asset}: $Url.sha256 is not a SHA-256 checksum file; refusing to install"
    }
    if ($entry.Name -cne $Asset) {
        throw "cannot verify ${Asset}: $Url.sha256 is the checksum of '$(Get-KmExcerpt $entry.Name)', not of $Asset; refusing to install"
    }
    return $entry.Hash
}

function Confirm-KmHash {
    param([string]$SumsFile, [string]$ShaFile, [string]$BinFile, [string]$Asset, [string]$Url, [string]$Version)
    $want = Get-KmSumsEntry $SumsFile $Asset $Version
    $side = Get-KmSideEntry $ShaFile $Asset $Url
    if ($side -ne $want) {
        throw "cannot verify ${Asset}: SHA256SUMS says sha256 $want but $Asset.sha256 says $side; refusing to install (not retried from another source)"
    }
    $got = (Get-FileHash -Algorithm SHA256 -LiteralPath $BinFile).Hash.ToLowerInvariant()
    if ($got -ne $want) {
        throw "checksum mismatch for $Asset from ${Url}: expected sha256 $want, got $got; refusing to install (not retried from another source)"
    }
    Write-KmInfo "verified sha256 $got"
}

# ----------------------------------------------------------------------------
# downloads of one release

# SHA256SUMS and its signature (checked at once: a bad one ends the install, never a fallback),
# then the asset's .sha256 and the asset, from $From (the URL prefix of release $Version).
function Save-KmRelease {
    param([string]$From, [string]$Version, [string]$Asset, [string]$TempDir, [bool]$CheckSignature)
    $sums = Join-Path $TempDir 'SHA256SUMS'
    $null = Invoke-KmDownload "$From/SHA256SUMS" $sums $KmMaxSumsBytes
    if ($CheckSignature) {
        $sig = Join-Path $TempDir 'SHA256SUMS.p256'
        try {
            $null = Invoke-KmDownload "$From/SHA256SUMS.p256" $sig $KmMaxSigBytes
        } catch {
            if ((Get-KmErrorKind $_.Exception) -eq 'missing') {
                throw "km $Version has no signature ($($_.Exception.Message)): refusing to install (not retried from another source)"
            }
            throw
        }
        if (-not (Test-KmSignature $sums $sig $Version)) {
            throw "the signature $From/SHA256SUMS.p256 does not verify for km $Version with this installer's release keys (a bad signature, an unknown key, or another release's): refusing to install (not retried from another source)"
        }
        Write-KmInfo "verified the release signature of km $Version (.NET ECDsa)"
    }
    $null = Invoke-KmDownload "$From/$Asset.sha256" (Join-Path $TempDir 'asset.sha256') $KmMaxSha256Bytes
    Write-KmInfo "downloading $From/$Asset"
    $null = Invoke-KmDownload "$From/$Asset" (Join-Path $TempDir "$BinaryName.exe") $KmMaxBinaryBytes $KmBinaryTimeoutSec
    return "$From/$Asset"
}

# GitHub's latest release: read from where releases/latest/download/SHA256SUMS was redirected to.
function Get-KmGitHubLatest {
    param([string]$Base, [string]$TempDir)
    $final = Invoke-KmDownload (Get-KmGitHubUrl $Base '' 'SHA256SUMS') (Join-Path $TempDir 'SHA256SUMS') $KmMaxSumsBytes
    $m = [regex]::Match($final, '/releases/download/([^/]+)/SHA256SUMS')
    $v = $null
    if ($m.Success) {
        $v = ConvertTo-KmVersion $m.Groups[1].Value
    }
    if (-not $v) {
        throw "cannot tell which version GitHub's latest release is; install one by name with -Version"
    }
    return $v
}

# ----------------------------------------------------------------------------
# installation

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

# Run the new binary from its temporary path (at most $KmRunTimeoutSec); its first line must be
# "km <version> ..." before it replaces anything.
function Confirm-KmRuns {
    param([string]$BinFile, [string]$Version, [string]$TempDir, [string]$Keep)
    $out = Join-Path $TempDir 'run.out'
    $err = Join-Path $TempDir 'run.err'
    try {
        $process = Start-Process -FilePath $BinFile -ArgumentList '--version' -NoNewWindow -PassThru `
            -RedirectStandardOutput $out -RedirectStandardError $err -ErrorAction Stop
    } catch {
        throw "the new km $Version does not run on this machine ($(Get-KmExcerpt $_.Exception.Message)): $Keep"
    }
    if (-not $process.WaitForExit($KmRunTimeoutSec * 1000)) {
        try { $process.Kill() } catch { Write-Verbose 'it ended meanwhile' }
        throw "the new km $Version did not answer --version within $KmRunTimeoutSec s: $Keep"
    }
    $first = ''
    if (Test-Path -LiteralPath $out) {
        $first = [string](Get-Content -LiteralPath $out -TotalCount 1)
    }
    if ($process.ExitCode -ne 0 -or -not ($first -ceq "$BinaryName $Version" -or $first.StartsWith("$BinaryName $Version ", [System.StringComparison]::Ordinal))) {
        throw "the new km $Version does not run on this machine (--version: exit $($process.ExitCode), '$(Get-KmExcerpt $first)'): $Keep; report it at $script:KmReleasesPage"
    }
    return $first
}

# Rename into place. A running km.exe cannot be replaced but can be renamed aside; when the
# second move fails the earlier km.exe is put back. A first install renames nothing.
function Install-KmBinary {
    param([string]$BinFile, [string]$Dest)
    if (Test-Path -LiteralPath $Dest -PathType Container) {
        throw "$Dest is a directory: remove it or choose another -InstallDir"
    }
    if (-not (Test-Path -LiteralPath $Dest -PathType Leaf)) {
        Move-Item -LiteralPath $BinFile -Destination $Dest -ErrorAction Stop
        return
    }
    try {
        Move-Item -LiteralPath $BinFile -Destination $Dest -Force -ErrorAction Stop
        return
    } catch {
        Write-Verbose "$Dest is in use: renaming it aside"
    }
    $aside = "$Dest.old"
    Remove-Item -LiteralPath $aside -Force -ErrorAction SilentlyContinue
    Rename-Item -LiteralPath $Dest -NewName (Split-Path -Leaf $aside) -ErrorAction Stop
    try {
        Move-Item -LiteralPath $BinFile -Destination $Dest -ErrorAction Stop
    } catch {
        $why = $_.Exception.Message
        Rename-Item -LiteralPath $aside -NewName (Split-Path -Leaf $Dest) -ErrorAction SilentlyContinue
        throw "cannot replace $Dest ($why): the earlier km.exe is back in place"
    }
}

function Remove-KmStaleTemps {
    # Temporary directories of earlier runs that were killed, older than an hour.
    param([string]$Dir)
    $cutoff = (Get-Date).AddHours(-1)
    Get-ChildItem -LiteralPath $Dir -Directory -Force -Filter '.km-install-*' -ErrorAction SilentlyContinue |
        Where-Object { $_.LastWriteTime -lt $cutoff } |
        ForEach-Object { Remove-Item -LiteralPath $_.FullName -Recurse -Force -ErrorAction SilentlyContinue }
}

function Install-Km {
    param(
        [string]$Version,
        [string]$InstallDir,
        [string]$Source,
        [string]$BaseUrl,
        [string]$GitHubBaseUrl,
        [bool]$RequireSignature
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
        throw "unknown source '$(Get-KmExcerpt $Source 20)': use -Source cdn or -Source github"
    }
    if ($Source -ne 'github') { Assert-KmUrl 'KM_BASE_URL' $BaseUrl }
    if ($Source -ne 'cdn') { Assert-KmUrl 'KM_GITHUB_BASE_URL' $GitHubBaseUrl }

    $wanted = $null
    if ($Version -and $Version -ne 'latest') {
        $wanted = ConvertTo-KmVersion $Version
        if (-not $wanted) {
            throw "'$(Get-KmExcerpt $Version 40)' is not a version: use the form v1.2.3 (or v1.2.3-rc.1)"
        }
    }

    $isWin = $true
    if (Get-Variable -Name IsWindows -ErrorAction SilentlyContinue) {
        $isWin = [bool]$IsWindows
    }
    if (-not $isWin) {
        throw "install.ps1 is for Windows; on Linux and macOS run: curl -sSL $BaseUrl | sh"
    }

    $checkSignature = [bool]$TrustedKeys.Trim()
    if (-not $checkSignature) {
        if ($RequireSignature) {
            throw 'cannot check the release signature: this copy of the installer carries no release keys; drop -RequireSignature (KM_REQUIRE_SIGNATURE) to install on the checksum alone'
        }
        Write-KmWarning 'not checking the release signature: this copy of the installer carries no release keys; installing on the SHA-256 checksum alone'
    }

    $arch = Get-KmArch
    $asset = Get-KmAssetName $arch

    $InstallDir = Resolve-KmInstallDir $InstallDir
    try {
        New-Item -ItemType Directory -Force -Path $InstallDir -ErrorAction Stop | Out-Null
        Remove-KmStaleTemps $InstallDir
        $probe = Join-Path $InstallDir ('.km-install-' + [System.Guid]::NewGuid().ToString('N'))
        New-Item -ItemType Directory -Path $probe -ErrorAction Stop | Out-Null
    } catch {
        throw "cannot write to $InstallDir ($($_.Exception.Message)): run as a user who can, or choose another directory with -InstallDir (or `$env:KM_INSTALL_DIR)"
    }
    $tempDir = $probe
    $binFile = Join-Path $tempDir "$BinaryName.exe"
    $dest = Join-Path $InstallDir "$BinaryName.exe"
    try {
        $url = $null
        $v = $wanted
        $cdnNote = ''
        if ($Source -ne 'github') {
            try {
                if (-not $v) {
                    $v = Get-KmCurrentVersion $BaseUrl $tempDir
                }
                Write-KmInfo "installing km $v for windows/$arch from $BaseUrl"
                $url = Save-KmRelease "$BaseUrl/releases/$v" $v $asset $tempDir $checkSignature
            } catch {
                if ($Source -eq 'cdn' -or -not (Test-KmFallback $_)) {
                    throw
                }
                Write-KmWarning "the CDN failed ($($_.Exception.Message)); trying GitHub releases"
                $cdnNote = '; the CDN failed too'
            }
        }
        if (-not $url) {
            try {
                if (-not $v) {
                    $v = Get-KmGitHubLatest $GitHubBaseUrl $tempDir
                }
                Write-KmInfo "installing km $v for windows/$arch from GitHub"
                $from = "$GitHubBaseUrl/$GithubRepository/releases/download/$v"
                $url = Save-KmRelease $from $v $asset $tempDir $checkSignature
            } catch {
                $kind = Get-KmErrorKind $_.Exception
                if (-not $kind) {
                    throw  # a verification failure: its own message
                }
                if ($kind -eq 'missing' -and $v) {
                    throw "km $v for windows/$arch is not published ($($_.Exception.Message)$cdnNote); releases: $script:KmReleasesPage"
                }
                throw "download from GitHub failed ($($_.Exception.Message)$cdnNote)"
            }
        }

        Confirm-KmHash (Join-Path $tempDir 'SHA256SUMS') (Join-Path $tempDir 'asset.sha256') $binFile $asset $url $v
        $keep = 'nothing was replaced'
        if (Test-Path -LiteralPath $dest -PathType Leaf) {
            $keep = "the earlier $dest is kept"
        }
        $versionLine = Confirm-KmRuns $binFile $v $tempDir $keep
        Install-KmBinary $binFile $dest
        Write-KmInfo "installed $dest"
        Write-KmInfo $versionLine

        if (Add-KmUserPath $InstallDir) {
            Write-KmInfo "added $InstallDir to your user PATH (new terminals will see it)"
        }
        $sessionEntries = @($env:Path -split ';' | Where-Object { $_ -ne '' } | ForEach-Object { $_.TrimEnd('\') })
        if ($sessionEntries -notcontains $InstallDir.TrimEnd('\')) {
            $env:Path = "$InstallDir;$env:Path"
        }
        $first = Get-Command $BinaryName -CommandType Application -ErrorAction SilentlyContinue | Select-Object -First 1
        if ($first -and ($first.Source -ne $dest)) {
            Write-KmWarning "another km at $($first.Source) comes earlier on PATH and will run instead of ${dest}: remove it or reorder PATH"
        }
    } finally {
        Remove-Item -LiteralPath $tempDir -Recurse -Force -ErrorAction SilentlyContinue
    }
}

# ----------------------------------------------------------------------------
# Top level: the only place errors are reported. Under `irm | iex` a failure is
# one red line and control returns to the user's prompt (or the script that ran
# iex: $PSCommandPath is that script's path there, so it is no test); `exit` is
# used only when this file itself runs as a script (an ExternalScript command).

if ($Help) {
    Show-KmUsage
    return
}
$KmRunAsFile = ($MyInvocation.MyCommand.CommandType -eq 'ExternalScript')
$KmRequireSignature = $RequireSignature.IsPresent -or ($env:KM_REQUIRE_SIGNATURE -and $env:KM_REQUIRE_SIGNATURE -notin @('0', 'no', 'false'))
$KmFailed = $false
try {
    Install-Km -Version $Version -InstallDir $InstallDir -Source $Source -BaseUrl $BaseUrl -GitHubBaseUrl $GitHubBaseUrl -RequireSignature $KmRequireSignature
} catch {
    $KmFailed = $true
    $message = $_.Exception.Message
    if ($env:NO_COLOR) {
        Write-Host "error: $message"
    } else {
        Write-Host "error: $message" -ForegroundColor Red
    }
}
if ($KmFailed -and $KmRunAsFile) {
    exit 1  # allowed: this file run as a script, never text run by iex (in a shell or in a caller's script)
}
