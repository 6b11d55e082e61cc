{*
  pvekeep when the plugin could not answer: one message, already in the
  client's language; the billing details above stay WHMCS's.
  Selectors: #pvekeep-error, #pvekeep-flash.
*}
<div id="pvekeep" class="pvekeep text-left">
  {if $pvekeep_flash}
    <div id="pvekeep-flash" class="alert alert-{$pvekeep_flash.kind|escape} pvekeep-flash" role="alert" data-pvekeep="flash" data-kind="{$pvekeep_flash.kind|escape}">{$pvekeep_flash.text|escape}</div>
  {/if}
  <div id="pvekeep-error" class="alert alert-danger pvekeep-error" data-pvekeep="error">{$pvekeep_error|escape}</div>
</div>
